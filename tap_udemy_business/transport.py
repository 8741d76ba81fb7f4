"""HTTP transport: one urllib3 pool for every stream, the pinned credentials, no redirects.

requests costs about a millisecond of CPU per page (cookies, hooks, environment lookups
on every call), as much as everything else a page of 100 records costs; its own transport,
urllib3, does the same GET in half that. Environment proxies and CA bundles are resolved
once, as requests would per call. Responses come back as `requests.Response` and failures
as requests' exceptions, which is what singer-sdk's error and retry handling expects.
"""

from __future__ import annotations

import os
import typing as t
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from requests.structures import CaseInsensitiveDict

if t.TYPE_CHECKING:
    from tap_udemy_business.auth import PinnedBasicAuth


def describe_url(url: str) -> str:
    """Return a URL fit for a log line: scheme, host, port, path and query, no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


class Transport:
    """GETs with the pinned `Authorization` header, over a shared keep-alive pool."""

    def __init__(
        self, base_url: str, auth: PinnedBasicAuth, pool_size: int, user_agent: str
    ) -> None:
        """Resolve proxy and CA settings from the environment once, and open the pool."""
        self._auth = auth
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        proxies = requests.utils.get_environ_proxies(base_url)
        proxy = proxies.get(urlsplit(base_url).scheme) or proxies.get("all")
        environment = os.environ
        ca_bundle = (
            environment.get("REQUESTS_CA_BUNDLE")
            or environment.get("CURL_CA_BUNDLE")
            or certifi.where()
        )
        options: dict[str, t.Any] = {
            "num_pools": 4,
            "maxsize": pool_size,
            "block": False,
            "retries": False,
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_bundle,
        }
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def get(self, url: str, timeout: float) -> requests.Response:
        """GET `url` (credentials only for the pinned origin); no retries, no redirects.

        Raises:
            requests.exceptions.Timeout: no answer within `timeout` seconds.
            requests.exceptions.ConnectionError: the connection failed or was dropped.
        """
        headers = {**self._headers, "Authorization": self._auth.header_for(url)}
        try:
            raw = self._pool.request(
                "GET",
                url,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
                retries=False,
            )
        except urllib3.exceptions.TimeoutError:
            msg = f"No answer from {describe_url(url)} within {timeout:g} s"
            raise requests.exceptions.Timeout(msg, request=requests.Request("GET", url)) from None
        except urllib3.exceptions.HTTPError as exc:
            msg = f"Connection to {describe_url(url)} failed ({type(exc).__name__})"
            raise requests.exceptions.ConnectionError(
                msg, request=requests.Request("GET", url)
            ) from None
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason or ""
        response.headers = CaseInsensitiveDict(raw.headers)
        response._content = raw.data  # noqa: SLF001 - the body, read once by urllib3
        response.url = url
        return response
