"""The sandbox portal: a local HTTP server that answers like the Udemy Business API.

`SandboxPortal` is the public face and the lifecycle (start, stop, context manager); the rest
lives in rooms of its own, following ``docs/sandbox-design.md``:

* `routes.py`: routes, filters and query-string validation, as the real API reads them;
* `paging.py` and `page_cache.py`: pages rendered once, kept in one bounded cache;
* `handler.py`: the HTTP server, its connection threads, faults applied to answers;
* `request_log.py`: what clients sent, for tests; `faults.py`: what goes wrong on demand.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hmac
import threading
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self

from tap_udemy_business.sandbox.faults import FaultInjector, FaultParams
from tap_udemy_business.sandbox.handler import PortalServer
from tap_udemy_business.sandbox.model import Dataset, DatasetParams
from tap_udemy_business.sandbox.paging import QueryPages, filters_of
from tap_udemy_business.sandbox.request_log import RequestLog, RequestRecord
from tap_udemy_business.sandbox.routes import (
    API_PREFIX,
    ENDPOINT_PATHS,
    LEARNING_PATH_ENDPOINTS,
    MAX_PAGE_SIZE,
    ROUTES,
)

if TYPE_CHECKING:
    from types import TracebackType

    from tap_udemy_business.sandbox.page_cache import CacheStats

__all__ = ["API_PREFIX", "ENDPOINT_PATHS", "ROUTES", "RequestRecord", "SandboxPortal"]

#: How long `stop` waits for connection threads to end once their sockets are cut.
_STOP_TIMEOUT_SECONDS = 10.0


class SandboxPortal:
    """A simulated Udemy Business portal serving one organization over HTTP on loopback.

    Example:
        with SandboxPortal(dataset=DatasetParams(learners=50)) as portal:
            config = portal.tap_config()  # api_url, organization_id, client_id, ...
    """

    def __init__(  # noqa: PLR0913 - every knob is a keyword the tests and the CLI set
        self,
        dataset: DatasetParams | None = None,
        faults: FaultParams | None = None,
        *,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",  # noqa: S107 - a local fake's password
        organization_id: int = 424242,
        host: str = "127.0.0.1",
        port: int = 0,
        page_cache_bytes: int = 512 * 1024 * 1024,
        request_log_size: int = 200_000,
        name: str = "sandbox-portal",
    ) -> None:
        """Generate nothing yet (the dataset is lazy); bind only on ``start()``.

        `name` prefixes the names of the portal's threads (see `thread_name`), so that a
        host running several portals, or a test, can tell whose threads are whose.
        """
        self.client_id = client_id
        self.client_secret = client_secret
        self.organization_id = organization_id
        self.name = name
        self._host = host
        self._port = port
        self._expected_auth = "Basic " + base64.b64encode(
            f"{client_id}:{client_secret}".encode()
        ).decode("ascii")
        self._injector = FaultInjector(faults if faults is not None else FaultParams())
        self._faults_lock = threading.Lock()
        self._pages = QueryPages(
            Dataset(dataset if dataset is not None else DatasetParams()), page_cache_bytes
        )
        self._log = RequestLog(request_log_size)
        self._lifecycle_lock = threading.Lock()
        self._server: PortalServer | None = None
        self._thread: threading.Thread | None = None
        #: Statuses to answer instead of data, by endpoint key: 403 or 404 plays a missing
        #: feature or scope, 301/302 a redirect to another (loopback) host.
        self.endpoint_status: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and serve in a daemon thread; return ``self`` so it chains."""
        with self._lifecycle_lock:
            if self._server is not None:
                msg = "the portal is already running"
                raise RuntimeError(msg)
            server = PortalServer((self._host, self._port), self)
            self._server = server
            self._port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=self.thread_name,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the socket, cut open connections, wait for every thread to end.

        Cutting keep-alive connections means no stale answer leaks out after a stop. Safe to
        call twice, and from any thread: a finalizer the garbage collector runs on one of the
        portal's own threads hands the work to a thread of its own, since the serving thread
        cannot wait for itself.
        """
        with self._lifecycle_lock:
            server, thread, self._server = self._server, self._thread, None
        if server is None:
            return
        current = threading.current_thread()
        if current is thread or current in server.connection_threads():
            threading.Thread(
                target=self._close, args=(server, thread), name=f"{self.thread_name}-stop"
            ).start()
            return
        self._close(server, thread)

    @staticmethod
    def _close(server: PortalServer, thread: threading.Thread | None) -> None:
        server.close(_STOP_TIMEOUT_SECONDS)
        if thread is not None and thread is not threading.current_thread():
            thread.join(_STOP_TIMEOUT_SECONDS)

    @property
    def running(self) -> bool:
        """Whether the portal is serving (started and not stopped)."""
        return self._server is not None

    @property
    def thread_name(self) -> str:
        """The serving thread's name; connection threads add ``-connection`` to it."""
        return f"{self.name}-{self._port}"

    def __enter__(self) -> Self:
        """Start unless already started."""
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

    # -- public surface --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Where the portal answers, e.g. ``http://127.0.0.1:41234`` (the tap's ``api_url``)."""
        if self._server is None:
            msg = "start() the portal first: the port is chosen when it binds"
            raise RuntimeError(msg)
        host = "127.0.0.1" if self._host in {"", "0.0.0.0"} else self._host  # noqa: S104
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the requested one until ``start()``)."""
        return self._port

    @property
    def dataset(self) -> Dataset:
        """The data model behind the portal."""
        return self._pages.dataset

    @property
    def cache_stats(self) -> CacheStats:
        """How many selections and rendered pages the page cache holds, and their bytes."""
        return self._pages.cache.stats()

    def tap_config(self) -> dict[str, Any]:
        """A tap configuration pointing at this portal."""
        return {
            "api_url": self.base_url,
            "organization_id": self.organization_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "portal_name": "sandbox",
        }

    @property
    def learning_paths_status(self) -> int:
        """What the learning-path endpoints answer: 200, or 403/404 for a portal without."""
        return self.endpoint_status.get("learning_paths", HTTPStatus.OK)

    @learning_paths_status.setter
    def learning_paths_status(self, status: int) -> None:
        for endpoint in LEARNING_PATH_ENDPOINTS:
            if status == HTTPStatus.OK:
                self.endpoint_status.pop(endpoint, None)
            else:
                self.endpoint_status[endpoint] = status

    def http_date(self) -> str:
        """The portal's clock for the `Date` header: its `today`, at the real time of day.

        Clients read "yesterday" (where reporting data ends) from it, so advancing the
        portal's clock moves their window too, as the real API's date would.
        """
        now = datetime.now(UTC)
        simulated = datetime.combine(self.dataset.today, now.time(), UTC)
        return email.utils.format_datetime(simulated, usegmt=True)

    @property
    def faults(self) -> FaultParams:
        """The faults in force."""
        return self._injector.params

    @faults.setter
    def faults(self, params: FaultParams) -> None:
        """Switch faults at runtime; counters and rate-limit buckets start afresh."""
        with self._faults_lock:
            self._injector = FaultInjector(params)

    def advance(self, days: int = 1) -> None:
        """Move the portal's clock, revealing new activity, and drop the now-stale pages."""
        self._pages.advance(days)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served, oldest first (bounded: the oldest are forgotten)."""
        return self._log.records()

    def clear_requests(self) -> None:
        """Forget the request log."""
        self._log.clear()

    def ground_truth(
        self,
        endpoint_key: str,
        from_date: date | str | None = None,
        to_date: date | str | None = None,
        course_id: int | None = None,
        user_email: str | None = None,
    ) -> list[dict[str, Any]]:
        """All records (``@all``) the API holds for these filters, to compare a tap's output with.

        Filters that do not apply to the endpoint are ignored, exactly as over HTTP.
        """
        filters = filters_of(from_date, to_date, course_id, user_email)
        return self._pages.ground_truth(endpoint_key, filters)

    def prerender(
        self,
        endpoint_key: str,
        page_size: int = MAX_PAGE_SIZE,
        *,
        fields: str = "@all",
        **filters: Any,
    ) -> int:
        """Render every page of a query into the cache, so a benchmark measures the client.

        Args:
            endpoint_key: The endpoint, e.g. ``"user_progress"``.
            page_size: The page size the client will ask for.
            fields: The ``fields[<class>]`` value the client will send.
            **filters: ``from_date``, ``to_date``, ``course_id``, ``user_email`` as the client
                will send them (strings or values).

        Returns:
            The number of pages rendered (they stay cached while they fit ``page_cache_bytes``).
        """
        return self._pages.prerender(endpoint_key, page_size, fields, filters)

    # -- called from handler threads ---------------------------------------------------------
    def _authorized(self, header: str | None) -> bool:
        if header is None:
            return False
        if hmac.compare_digest(header, self._expected_auth):
            return True
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded, f"{self.client_id}:{self.client_secret}")
