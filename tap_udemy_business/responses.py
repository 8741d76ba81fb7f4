"""What an answer means: fine, retriable, or fatal, with a one-line message that says what to check.

Fatal messages name the URL (which never carries credentials) and the setting to check; an
error body is quoted only after every shape of the credentials is blanked out of it.
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from singer_sdk.exceptions import RetriableAPIError

from tap_udemy_business.errors import EndpointUnavailableError, ProxyConfigError, UdemyFatalError
from tap_udemy_business.urls import describe_url

if t.TYPE_CHECKING:
    import requests

    from tap_udemy_business.api_session import ApiSession

#: How much of an error body a message quotes (after redaction).
ERROR_EXCERPT_CHARS = 200


def check_response(response: requests.Response, session: ApiSession) -> None:
    """Sort an answer into fine, retriable (429, 5xx) or fatal.

    Args:
        response: the answer, its body read.
        session: the tap's session: its credentials (to redact a quoted body) and proxy.

    Raises:
        RetriableAPIError: 429 or 5xx, for the retries to try again.
        UdemyFatalError: any other status from 300 up, with what to check.
    """
    status = response.status_code
    if status < HTTPStatus.MULTIPLE_CHOICES:
        return
    url = describe_url(response.url)
    if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        msg = f"{status} {response.reason} from {url}"
        raise RetriableAPIError(msg, response)
    if status < HTTPStatus.BAD_REQUEST:
        msg = f"{status} redirect from {url} refused: check api_url."
        raise UdemyFatalError(msg)
    known = _known_failure(status, url, session)
    if known is not None:
        raise known
    raise UdemyFatalError(_redacted(f"{status} {response.reason} from {url}: ", response, session))


def _known_failure(status: int, url: str, session: ApiSession) -> UdemyFatalError | None:
    """The message for a status that says what to check; None for any other 4xx."""
    if status == HTTPStatus.UNAUTHORIZED:
        return UdemyFatalError(f"401 Unauthorized from {url}: check client_id and client_secret.")
    if status == HTTPStatus.FORBIDDEN:
        return EndpointUnavailableError(
            f"403 Forbidden from {url}: the API credentials have expired or lack the "
            "scope for this endpoint; regenerate them on the portal's LMS integration page."
        )
    if status == HTTPStatus.NOT_FOUND and _page_number(url) > 1:
        return UdemyFatalError(
            f"404 Not Found from {url}: the list shrank while it was read (fewer pages "
            "than its count said); run the sync again."
        )
    if status == HTTPStatus.NOT_FOUND:
        return EndpointUnavailableError(
            f"404 Not Found from {url}: check organization_id and portal_name (or api_url)."
        )
    if status == HTTPStatus.PROXY_AUTHENTICATION_REQUIRED:
        proxy = session.transport.proxy
        named = f" {proxy.describe()}" if proxy else ""
        return ProxyConfigError(
            f"407 Proxy Authentication Required for {url} from the proxy{named}: give "
            "its user and password in the proxy URL (http://user:password@host:port)."
        )
    return None


def _redacted(prefix: str, response: requests.Response, session: ApiSession) -> str:
    """`prefix` and the start of the body, with every shape of the credentials blanked.

    A server or proxy may echo the request, its Authorization header included; the
    text is redacted whole before it is cut, so no part of a secret survives the cut.
    """
    text = " ".join(f"{prefix}{response.text[: ERROR_EXCERPT_CHARS * 10]}".split())
    redacted = session.auth.redact(text)
    return redacted[: len(prefix) + ERROR_EXCERPT_CHARS]


def _page_number(url: str) -> int:
    """The `page` parameter of a URL (1 when absent or odd)."""
    values = parse_qs(urlsplit(url).query).get("page", ["1"])
    return int(values[0]) if values[0].isdigit() else 1
