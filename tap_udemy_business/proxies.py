"""Proxies: the one the environment names for the API, and a urllib3 pool through it.

Read as requests reads them (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), once per
tap instead of once per request; a proxy the tap cannot use is one line naming its variable.
"""

from __future__ import annotations

import importlib.util
import typing as t
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from tap_udemy_business.errors import ProxyConfigError
from tap_udemy_business.urls import describe_url

_SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})


class ProxySetting(t.NamedTuple):
    """The proxy the environment names for the API, and the variable that names it."""

    url: str
    variable: str

    def describe(self) -> str:
        """The proxy as a log line may show it: no user, no password."""
        return f"{describe_url(self.url)} ({self.variable})"


def environment_proxy(base_url: str) -> ProxySetting | None:
    """The proxy for `base_url` from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, as requests reads them.

    `NO_PROXY` applies; a proxy given without a scheme is an http:// one, as in requests.
    """
    proxies = requests.utils.get_environ_proxies(base_url)
    for key in (urlsplit(base_url).scheme, "all"):
        if proxies.get(key):
            url = str(proxies[key])
            url = url if "://" in url else f"http://{url}"
            return ProxySetting(url, f"{key.upper()}_PROXY")
    return None


def pool_manager(proxy: ProxySetting | None, options: dict[str, t.Any]) -> urllib3.PoolManager:
    """A direct pool, or one through the proxy with its credentials as `Proxy-Authorization`."""
    if proxy is None:
        return urllib3.PoolManager(**options)
    parts = urlsplit(proxy.url)
    if parts.scheme in _SOCKS_SCHEMES:
        return _socks_manager(proxy, options)
    if parts.scheme not in {"http", "https"}:
        msg = (
            f"The proxy {proxy.describe()} is neither http://, https:// nor socks5://: "
            "correct the variable or unset it."
        )
        raise ProxyConfigError(msg)
    headers = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = urllib3.make_headers(proxy_basic_auth=credentials)
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return urllib3.ProxyManager(bare, proxy_headers=headers, **options)


def _socks_manager(proxy: ProxySetting, options: dict[str, t.Any]) -> urllib3.PoolManager:
    """A SOCKS proxy, which urllib3 supports through the optional PySocks package."""
    if importlib.util.find_spec("socks") is None:
        msg = (
            f"The proxy {proxy.describe()} is a SOCKS proxy, which needs the PySocks package "
            "(pip install pysocks); or use an http:// proxy."
        )
        raise ProxyConfigError(msg)
    from urllib3.contrib.socks import SOCKSProxyManager  # noqa: PLC0415 - optional

    return SOCKSProxyManager(proxy.url, **options)
