"""Errors the tap raises on purpose, each with a message fit for one line on stderr.

Messages name the URL (which never carries credentials) and what to check; they never
include a secret or the Authorization header.
"""

from __future__ import annotations

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class UdemyFatalError(FatalAPIError):
    """A failure retrying cannot mend: bad credentials, wrong organization, bad data."""


class EndpointUnavailableError(UdemyFatalError):
    """403 or 404 on an endpoint that an organization may not have (learning paths)."""


class UnsafeLinkError(UdemyFatalError):
    """A link that leaves its list: another origin, or another organization or endpoint.

    Another scheme, host or port would receive the credentials; another path is another
    organization's or endpoint's list.
    """


class InvalidBodyError(RetriableAPIError):
    """A body that is not JSON (truncated or garbled): retried like a 5xx."""


class SyncAbortedError(UdemyFatalError):
    """A request not sent because another page's fatal error already ended the sync."""

    def __init__(self) -> None:
        """Say why, in case it is ever the error that surfaces."""
        super().__init__("The sync was aborted by an earlier error.")


class TransportError(RetriableAPIError, requests.exceptions.ConnectionError):
    """A request that got no whole answer (refused, reset, cut off): retried.

    It is a `RetriableAPIError`, so a sync that gives up reports its message (which says
    what happened) rather than only its type, and a `requests` exception, as callers that
    tell "the API never answered" from a bad answer expect.
    """

    def __init__(self, message: str, url: str, reason: str) -> None:
        """Keep the URL (as `requests` does) and a short reason for the retry log line."""
        super().__init__(message)
        self.request = requests.Request("GET", url)
        self.reason = reason


class RequestTimeoutError(TransportError, requests.exceptions.Timeout):
    """No whole answer within `request_timeout` (headers and body together): retried."""


class CertificateError(UdemyFatalError):
    """The server's TLS certificate could not be verified: retrying cannot mend it."""


class ResponseTooLargeError(UdemyFatalError):
    """An answer larger than `max_response_mb`: it is not read, so memory stays bounded."""


class ProxyConfigError(UdemyFatalError):
    """A proxy the tap cannot use as configured (a SOCKS proxy without PySocks, a 407)."""
