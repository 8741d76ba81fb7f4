"""HTTP Basic authentication pinned to the configured API origin."""

from __future__ import annotations

import base64
import re

from typing_extensions import override

from tap_udemy_business.errors import UnsafeLinkError
from tap_udemy_business.redaction import REDACTED, shapes
from tap_udemy_business.urls import origin_of


class PinnedBasicAuth:
    """Gives `Authorization: Basic …` only to requests for one origin.

    The API's pages link to each other with absolute URLs. A link (or a redirect) to any
    other scheme, host or port is refused before anything is sent, so the organization's
    credentials can only ever reach the API they were issued for.
    """

    def __init__(self, client_id: str, client_secret: str, base_url: str) -> None:
        """Encode the credentials once; keep nothing printable about them."""
        pair = f"{client_id}:{client_secret}"
        token = base64.b64encode(pair.encode()).decode("ascii")
        self._header = f"Basic {token}"
        self._secrets = _pattern_of(client_id, client_secret, pair, token)
        self.origin = origin_of(base_url)

    def header_for(self, url: str) -> str:
        """The `Authorization` value for a URL of the pinned origin; refuse any other."""
        if origin_of(url) != self.origin:
            scheme, host, port = origin_of(url)
            msg = (
                f"Refused to send credentials to {scheme}://{host}:{port}: the API is "
                f"{self.origin[0]}://{self.origin[1]}:{self.origin[2]} (a 'next' link or "
                "redirect pointed elsewhere)."
            )
            raise UnsafeLinkError(msg)
        return self._header

    def redact(self, text: str) -> str:
        """`text` with the client id, the secret and the Basic token blanked out.

        A server or proxy that echoes the request (its headers, its URL) can put them in
        a body the tap quotes, in any of the shapes they take in headers, URLs, JSON or
        HTML; every shape goes, whatever its length or case.
        """
        return self._secrets.sub(REDACTED, text)

    @override
    def __repr__(self) -> str:
        """Show the origin only: the credentials must never reach a log."""
        return f"PinnedBasicAuth(origin={self.origin!r})"


def _pattern_of(*values: str) -> re.Pattern[str]:
    """One case-insensitive pattern for every shape of `values`, longest first."""
    forms = {form for value in values if value for form in shapes(value)}
    alternatives = sorted(forms, key=len, reverse=True) or ["(?!)"]
    return re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)
