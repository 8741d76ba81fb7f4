"""Errors the tap raises on purpose, each with a message fit for one line on stderr.

Messages name the URL (which never carries credentials) and what to check; they never
include a secret or the Authorization header.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class UdemyFatalError(FatalAPIError):
    """A failure retrying cannot mend: bad credentials, wrong organization, bad data."""


class EndpointUnavailableError(UdemyFatalError):
    """403 or 404 on an endpoint that an organization may not have (learning paths)."""


class UnsafeLinkError(UdemyFatalError):
    """A link that would send the credentials to another scheme, host or port."""


class InvalidBodyError(RetriableAPIError):
    """A body that is not JSON (truncated or garbled): retried like a 5xx."""


class SyncAbortedError(UdemyFatalError):
    """A request not sent because another page's fatal error already ended the sync."""

    def __init__(self) -> None:
        """Say why, in case it is ever the error that surfaces."""
        super().__init__("The sync was aborted by an earlier error.")
