"""RipTideClient: configuration, the shared requests.Session, and the sub-APIs."""

from __future__ import annotations

import os
import threading
from typing import Any, Mapping, Sequence

from . import _fork
from ._config import UNSET, ClientConfig, OverflowPolicy, _Unset
from .models import CrawlOptions, CrawlResponse, HealthResponse, coerce_options
from .protocol.urls import validate_urls
from .retry import RetryPolicy, coerce_retry
from .streaming import StreamingAPI

__all__ = ["RipTideClient", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "http://localhost:8080"


class RipTideClient:
    """A blocking client for the RipTide crawler API.

    Usage::

        client = RipTideClient("http://localhost:8080")
        for event in client.streaming.crawl_websocket(["https://example.com"]):
            print(event.event_type)
        client.close()

    or, closing everything on the way out::

        with RipTideClient() as client:
            response = client.crawl(["https://example.com"])

    Args:
        base_url: the server, e.g. ``http://localhost:8080`` (a path prefix is kept);
            None reads ``RIPTIDE_BASE_URL``, then uses ``http://localhost:8080``.
        api_key: sent as ``X-API-Key`` on every request and WebSocket handshake; None
            reads ``RIPTIDE_API_KEY``; an empty string sends no key.
        timeout: seconds to wait for a reply (HTTP read timeout, WebSocket request/reply
            deadline); None waits for ever.
        connect_timeout: seconds for TCP connect, TLS and the WebSocket handshake.
        retry: a :class:`RetryPolicy`, an int (max attempts), or None / 0 (no retries).
        ping_interval: seconds between WebSocket keepalive pings; None sends none.
        ping_timeout: extra seconds of total silence after which a WebSocket peer is dead
            (detected within ping_interval + ping_timeout); None never declares it dead.
        queue_size: messages held in memory between a stream's reader thread and you.
        overflow: when that queue is full: ``"spill"`` (to a temp file, nothing lost;
            the default), ``"block"``, ``"drop_oldest"``, ``"drop_newest"`` or ``"error"``
            (or the :class:`~riptide_sync._config.OverflowPolicy` of that value).
        max_message_size: the largest WebSocket message accepted, in bytes.
        verify: TLS certificate verification: True, False, or a CA bundle path.
        proxy: an http(s) proxy URL for HTTP and WebSocket, or None.
        max_urls_per_request: the server's per-request URL limit; longer lists are split.
        parallel: how many chunks of a long list stream at once, each on its own
            connection (1: in sequence on one socket). Per-call ``parallel=`` overrides it.

    Raises:
        ConfigError: a setting is out of range or of the wrong type; nothing is sent.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | None = 30.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy | int | None | _Unset = UNSET,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 10.0,
        queue_size: int = 1000,
        overflow: OverflowPolicy | str = OverflowPolicy.SPILL,
        max_message_size: int = 64 * 1024 * 1024,
        verify: bool | str = True,
        proxy: str | None = None,
        max_urls_per_request: int = 100,
        parallel: int = 2,
    ) -> None:
        if base_url is None:
            base_url = os.environ.get("RIPTIDE_BASE_URL") or DEFAULT_BASE_URL
        if api_key is None:
            api_key = os.environ.get("RIPTIDE_API_KEY") or None
        self.config = ClientConfig(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            queue_size=queue_size,
            overflow=overflow,  # type: ignore[arg-type]
            max_message_size=max_message_size,
            verify=verify,
            proxy=proxy,
            max_urls_per_request=max_urls_per_request,
            parallel=parallel,
        )
        """The validated settings (read-only); built first, so a bad one fails here."""
        self.config.check_environment()
        from ._http.session import check_proxy_support

        # Whether the HTTP layer can use the proxy: a SOCKS one needs libraries (it says which).
        check_proxy_support(self.config.proxy)
        self.retry: RetryPolicy = RetryPolicy() if retry is UNSET else coerce_retry(retry)
        """The retry policy of every call (per-call overrides take precedence)."""
        self._session: Any = None
        self._session_pid = 0
        self._session_lock = threading.Lock()
        _fork.register(self)
        self.streaming = StreamingAPI(self)
        """Streaming calls: ``crawl_websocket``, ``crawl_ndjson``, ``crawl_sse``, ``ping_websocket``,
        ``get_websocket_status``."""

    @property
    def base_url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return self.config.base_url

    @property
    def http(self) -> Any:
        """The client's one ``requests.Session`` (created on first use; connections reused).

        Each process has its own: in a child forked after the session was made, the
        inherited one is closed (its file descriptors only) and a new one is made.
        """
        with self._session_lock:
            if self._session is not None and self._session_pid != os.getpid():
                # Forked without the at-fork hook having run (a fork() from C code).
                self._drop_inherited_session()
            if self._session is None:
                from ._http import make_session

                self._session = make_session(self.config)
                self._session_pid = os.getpid()
            return self._session

    def _after_fork_in_child(self) -> None:
        """In a forked child: a fresh lock, and none of the parent's pooled connections."""
        self._session_lock = threading.Lock()
        self._drop_inherited_session()

    def _drop_inherited_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            from ._http.session import close_inherited_session

            close_inherited_session(session)

    def crawl(
        self,
        urls: Sequence[str],
        options: CrawlOptions | Mapping[str, Any] | None = None,
        *,
        retry: RetryPolicy | int | None | _Unset = UNSET,
    ) -> CrawlResponse:
        """Crawl ``urls`` in one batch (``POST /crawl``) and return every result at once.

        Lists longer than the server's limit are sent as several requests and merged.

        Args:
            urls: absolute http(s) URLs; results come back in this order.
            options: a :class:`CrawlOptions`, a dict of its fields, or None (defaults).
            retry: overrides the client's retry policy for this call.

        Raises:
            ValidationError: bad ``urls`` or ``options`` (before any I/O).
            APIError: the server answered with an error status (after retries).
            StreamConnectionError, StreamTimeoutError: the server could not be reached.
        """
        url_list = validate_urls(urls)
        crawl_options = coerce_options(options)
        wire = crawl_options.to_wire() if crawl_options else None
        policy = self._policy(retry)
        from ._http import crawl_batch

        return crawl_batch(self.http, self.config, url_list, wire, retry=policy)  # per chunk

    def health(self, *, retry: RetryPolicy | int | None | _Unset = UNSET) -> HealthResponse:
        """``GET /healthz``. An ``unhealthy`` server (503) is a result, not an exception.

        Raises:
            APIError: an error status other than the health report's 503.
            StreamConnectionError, StreamTimeoutError: the server could not be reached.
        """
        from ._http import get_health

        return self._policy(retry).retrying()(get_health, self.http, self.config)

    def _policy(self, retry: RetryPolicy | int | None | _Unset) -> RetryPolicy:
        """The policy of one call: ``retry=`` when given, else the client's."""
        return self.retry if retry is UNSET else coerce_retry(retry)

    def close(self) -> None:
        """Close the HTTP connection pool. Streams close themselves; idempotent."""
        with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> RipTideClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RipTideClient {self.config.base_url}>"

