"""StreamingAPI: the same crawl stream over WebSocket, NDJSON or SSE.

Every transport returns a :class:`~riptide_sync.CrawlStream` of
:class:`~riptide_sync.models.StreamingResult` events in one vocabulary (``welcome`` on
WebSocket only, ``metadata``, ``result``, ``progress``, ``summary``, ``error``), so code
written for one transport runs unchanged on the others.
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ._config import check_duration
from ._driver import progress_deadline
from ._stream import CrawlStream
from ._transport import StreamStats
from .exceptions import APIError, ConfigError, RipTideError, ValidationError
from .models import CrawlOptions, StreamingResult, coerce_options
from .protocol.urls import validate_base_url, validate_urls
from .retry import RetryPolicy
from ._config import UNSET, _Unset, check_count, check_path

if TYPE_CHECKING:
    from .client import RipTideClient

__all__ = ["StreamingAPI"]

OnMessage = Callable[[StreamingResult], Any]


class StreamingAPI:
    """``client.streaming``: streaming crawls and WebSocket health checks."""

    def __init__(self, client: RipTideClient) -> None:
        self._client = client

    # --- crawls -------------------------------------------------------------------------

    def crawl_websocket(
        self,
        urls: Sequence[str],
        options: CrawlOptions | Mapping[str, Any] | None = None,
        on_message: OnMessage | None = None,
        *,
        retry: RetryPolicy | int | None | _Unset = UNSET,
        progress_timeout: float | None | _Unset = UNSET,
        checkpoint: str | os.PathLike[str] | None = None,
        parallel: int | None = None,
    ) -> CrawlStream:
        """Stream a crawl over the WebSocket ``/crawl/ws``.

        A background thread reads the socket (answering pings, detecting a dead peer)
        into a bounded queue; you read events with a plain ``for`` loop.

        Args:
            urls: absolute http(s) URLs; ``data["index"]`` of each result is its position.
            options: a :class:`CrawlOptions`, a dict of its fields, or None (defaults).
            on_message: called with each event on your thread, in order, before it is
                yielded; an exception in it propagates and closes the stream.
            retry: overrides the client's retry policy for this stream (a RetryPolicy,
                max attempts, or None for no resume).
            progress_timeout: seconds without any event after which the request counts
                as stalled and is resumed; by default ``options.timeout_secs`` (else the
                server's 30 s per-URL limit) plus 10 s; None waits for ever.
            checkpoint: a JSON Lines file: each result is appended as it is yielded, and
                positions already in it (from an earlier run over the same list) are not
                crawled or yielded again; the summary still covers the whole list.
            parallel: for lists longer than the server's per-request limit, how many
                requests (each on its own connection) may run at once; None uses the
                client's ``parallel`` (default 2); 1 sends them in sequence on one socket.

        Returns:
            A :class:`CrawlStream` (iterator and context manager); nothing is sent until
            the first event is asked for.

        Raises:
            ValidationError: bad ``urls``, ``options`` or ``on_message``, before any I/O.
        """
        return self._stream(
            self._websocket_transport,
            urls,
            options,
            on_message,
            retry=retry,
            progress_timeout=progress_timeout,
            checkpoint=checkpoint,
            parallel=parallel,
        )

    def crawl_ndjson(
        self,
        urls: Sequence[str],
        options: CrawlOptions | Mapping[str, Any] | None = None,
        on_message: OnMessage | None = None,
        *,
        retry: RetryPolicy | int | None | _Unset = UNSET,
        progress_timeout: float | None | _Unset = UNSET,
        checkpoint: str | os.PathLike[str] | None = None,
        parallel: int | None = None,
    ) -> CrawlStream:
        """Stream a crawl as NDJSON from ``POST /crawl/stream``; same events as
        :meth:`crawl_websocket` (but no ``welcome``). Arguments and errors as there."""
        return self._stream(
            self._ndjson_transport,
            urls,
            options,
            on_message,
            retry=retry,
            progress_timeout=progress_timeout,
            checkpoint=checkpoint,
            parallel=parallel,
        )

    def crawl_sse(
        self,
        urls: Sequence[str],
        options: CrawlOptions | Mapping[str, Any] | None = None,
        on_message: OnMessage | None = None,
        *,
        retry: RetryPolicy | int | None | _Unset = UNSET,
        progress_timeout: float | None | _Unset = UNSET,
        checkpoint: str | os.PathLike[str] | None = None,
        parallel: int | None = None,
    ) -> CrawlStream:
        """Stream a crawl as Server-Sent Events from ``POST /crawl/sse``; same events as
        :meth:`crawl_websocket` (SSE ``complete`` arrives as ``summary``, ``status`` as
        ``progress``). Arguments and errors as there."""
        return self._stream(
            self._sse_transport,
            urls,
            options,
            on_message,
            retry=retry,
            progress_timeout=progress_timeout,
            checkpoint=checkpoint,
            parallel=parallel,
        )

    # Transports are imported on first use: input is validated before anything else.
    def _websocket_transport(self, stats: StreamStats) -> Any:
        from ._ws import WebSocketTransport

        return WebSocketTransport(self._client.config, stats)

    def _ndjson_transport(self, stats: StreamStats) -> Any:
        from ._http import NDJSONTransport

        return NDJSONTransport(self._client.config, self._client.http, stats)

    def _sse_transport(self, stats: StreamStats) -> Any:
        from ._http import SSETransport

        return SSETransport(self._client.config, self._client.http, stats)

    def _stream(
        self,
        make_transport: Callable[[StreamStats], Any],
        urls: Sequence[str],
        options: CrawlOptions | Mapping[str, Any] | None,
        on_message: OnMessage | None,
        *,
        retry: RetryPolicy | int | None | _Unset,
        progress_timeout: float | None | _Unset,
        checkpoint: str | os.PathLike[str] | None,
        parallel: int | None,
    ) -> CrawlStream:
        url_list = validate_urls(urls)
        crawl_options = coerce_options(options)
        _check_on_message(on_message)
        policy = self._client._policy(retry)
        progress_seconds: float | None
        if progress_timeout is UNSET:
            per_url = crawl_options.timeout_secs if crawl_options else None
            progress_seconds = progress_deadline(per_url)
        else:
            progress_seconds = check_duration("progress_timeout", progress_timeout, optional=True)
        check_path("checkpoint", checkpoint)
        parallel = self._client.config.parallel if parallel is None else check_count(
            "parallel", parallel)
        stats = StreamStats()
        return CrawlStream(
            lambda: make_transport(stats),
            url_list,
            crawl_options.to_wire() if crawl_options else None,
            stats=stats,
            on_message=on_message,
            max_urls_per_request=self._client.config.max_urls_per_request,
            progress_timeout=progress_seconds,
            retry=policy,
            checkpoint=checkpoint,
            parallel=parallel,
        )

    # --- WebSocket health -----------------------------------------------------------------

    def ping_websocket(self, websocket_url: str | None = None) -> dict[str, Any]:
        """Open a WebSocket, send a JSON ``ping`` and time the ``pong``.

        Args:
            websocket_url: a ``ws(s)://`` URL, or None for the client's ``/crawl/ws``.

        Returns:
            ``{"success": bool, "latency_ms": float | None, "server_time": str | None,
            "session_id": str | None}``; ``success`` is False (with ``"error"``) when the
            server could not be reached or did not answer within the client's timeout.
        """
        return self._ping(websocket_url)[0]

    def _ping(self, websocket_url: str | None = None) -> tuple[dict[str, Any], RipTideError | None]:
        """:meth:`ping_websocket`'s reply, and the error behind a failed one (None after a
        pong): the CLI tells the kinds of failure apart by its type, which the reply's
        ``"error"`` string cannot carry."""
        import time

        url = _ws_url(websocket_url)
        from ._ws import WebSocketTransport

        transport = WebSocketTransport(self._client.config, StreamStats(), url=url)
        try:
            started = time.perf_counter()
            reply = transport.request("ping", self._client.config.timeout)
            latency_ms = (time.perf_counter() - started) * 1000.0
            if reply.event_type != "pong":  # the server answered with an error
                error = _reply_error(reply, "ping")
                return {
                    "success": False,
                    "latency_ms": round(latency_ms, 3),
                    "server_time": None,
                    "session_id": transport.session_id,
                    "error": str(error),
                }, error
            return {
                "success": True,
                "latency_ms": round(latency_ms, 3),
                "server_time": reply.data.get("timestamp"),
                "session_id": reply.data.get("session_id") or transport.session_id,
            }, None
        except RipTideError as exc:
            return {
                "success": False,
                "latency_ms": None,
                "server_time": None,
                "session_id": transport.session_id,
                "error": str(exc),
            }, exc
        finally:
            transport.close()

    def get_websocket_status(self, websocket_url: str | None = None) -> dict[str, Any]:
        """Open a WebSocket and ask the server for its ``status`` of that connection.

        Returns:
            ``{"session_id", "is_healthy", "message_count", "connected_duration_ms",
            "backpressure_count"}`` as the server sent them.

        Raises:
            StreamConnectionError, StreamTimeoutError, APIError: the server could not be
                reached, did not answer in time, or refused the handshake; an APIError
                too when it answered the request with an ``error`` (its type and message).
        """
        url = _ws_url(websocket_url)
        from ._ws import WebSocketTransport

        transport = WebSocketTransport(self._client.config, StreamStats(), url=url)
        try:
            reply = transport.request("status", self._client.config.timeout)
            if reply.event_type != "status":
                raise _reply_error(reply, "status")
            return dict(reply.data)
        finally:
            transport.close()


def _reply_error(reply: StreamingResult, request_type: str) -> APIError:
    """The APIError of an ``error`` event answering a ping or status request."""
    data = reply.data
    message = str(data.get("message") or f"the server answered {request_type!r} with an error")
    error_type = data.get("error_type")
    return APIError(
        f"{request_type}: {message}",
        error_type=error_type if isinstance(error_type, str) else None,
        body=dict(data),
    )


def _ws_url(websocket_url: str | None) -> str | None:
    if websocket_url is None:
        return None
    if not isinstance(websocket_url, str) or not websocket_url.startswith(("ws://", "wss://")):
        raise ValidationError(
            f"websocket_url must be a ws:// or wss:// URL, got {websocket_url!r}",
            field="websocket_url",
            value=websocket_url,
        )
    try:  # the same checks as a base URL, on the equivalent http(s) URL
        validate_base_url("http" + websocket_url[2:])
    except ConfigError as exc:
        raise ValidationError(
            f"websocket_url {websocket_url!r} is malformed: {exc}",
            field="websocket_url",
            value=websocket_url,
        ) from exc
    return websocket_url


def _check_on_message(on_message: Any) -> None:
    if on_message is None:
        return
    if not callable(on_message):
        raise ValidationError(
            f"on_message must be a callable taking one event, got {on_message!r}",
            field="on_message",
            value=on_message,
        )
    target = getattr(on_message, "__call__", None)
    if (
        inspect.iscoroutinefunction(on_message)
        or inspect.isasyncgenfunction(on_message)
        or inspect.iscoroutinefunction(target)
    ):
        raise ValidationError(
            f"on_message must be a plain function, not a coroutine function "
            f"({on_message!r}): this client is synchronous, drop the 'async'",
            field="on_message",
            value=on_message,
        )
