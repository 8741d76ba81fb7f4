"""URLs as the tap reads them: an origin to pin the credentials to, a form fit for a log line."""

from __future__ import annotations

from urllib.parse import urlsplit

#: A URL's scheme, host and port: where a request goes, and so who receives the credentials.
Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin:
    """Return (scheme, host, port) of a URL, with the scheme's default port filled in.

    Raises:
        ValueError: the port is not a number.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def describe_url(url: str) -> str:
    """Return a URL fit for a log line: scheme, host, port, path and query, no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"
