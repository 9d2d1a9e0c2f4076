"""The WebSocket surface, ``GET /crawl/ws`` (docs/protocol.md §1).

By default a connection behaves as the real server's (§1.3, §1.8): one loop reads a frame,
handles it completely (a crawl up to its summary) and only then reads the next, and a
keepalive task sends Ping frames (epoch-ms payload) under the same send lock the crawl
holds from start to summary. So during a crawl nothing is read (client pings wait) and no
Ping goes out. It never closes a socket for a missing pong.

``ServerConfig.ping_during_crawl`` (lenient) splits reading from handling: a reader that
always reads (answering control frames mid-crawl) queues requests for a worker, and the
keepalive pings regardless of crawls; ``pong_timeout`` then closes a socket (1011) whose
pong is late.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from . import wire
from .crawler import result_for
from .httpapi import STATE, outcomes
from .state import Backpressure, FaultRunner, ServerState, StreamStopped, drain_then_abort, wait_until_gone
from .synthetic import SyntheticMessages

logger = logging.getLogger("riptide_sync.server.ws")

_MAX_MESSAGE = 64 * 1024 * 1024  # axum's default inbound limit (§1.10).


class _NoLock:
    """An async context that locks nothing (``contextlib.nullcontext`` is async only
    from Python 3.10 on)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_NO_LOCK = _NoLock()


def _text_frame_header(length: int) -> bytes:
    """RFC 6455 §5.2 header of an unmasked, final text frame (server to client)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


async def ws_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade, then serve the connection until it closes."""
    state = request.app[STATE]
    ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=_MAX_MESSAGE, timeout=1.0)
    await ws.prepare(request)
    state.counters.ws_accepted += 1
    state.counters.ws_open += 1
    try:
        await WsConnection(state, request, ws).run()
    finally:
        state.counters.ws_open -= 1
    return ws


class WsConnection:
    """One WebSocket session: ``session_id``, counters, backpressure statistics, faults."""

    def __init__(self, state: ServerState, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.state = state
        self.request = request
        self.ws = ws
        self.session_id = wire.new_id()
        self.connection = state.next_connection_id()
        self.connected = time.monotonic()
        self.message_count = 0
        self.frozen = False
        self.faults = FaultRunner(state, "ws")
        faults = state.config.faults
        self.bp = Backpressure(faults.backpressure_drop, faults.slow_send_threshold)
        self.awaiting_pong_since: float | None = None
        self.crawling = False
        self.requests: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.lenient = state.config.ping_during_crawl
        self.send_lock = asyncio.Lock()
        """Held for each message sent and for a whole crawl (§1.8); the keepalive takes it
        for each Ping (strict mode only)."""

    async def run(self) -> None:
        """Send welcome, start keepalive (and worker, when lenient), read until the peer goes away."""
        loop = asyncio.get_running_loop()
        await self.send("welcome", {"session_id": self.session_id, "server_time": wire.now_rfc3339(),
                                    "protocol_version": "1.0", "supported_operations": ["crawl", "ping", "status"]})
        tasks = [loop.create_task(self._keepalive())]
        if self.lenient:
            tasks.append(loop.create_task(self._worker()))
        try:
            await self._read()
        except (StreamStopped, ConnectionError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not self.ws.closed:
                try:
                    await asyncio.wait_for(self.ws.close(), 1.0)
                except (asyncio.TimeoutError, ConnectionError):
                    pass
            if self.request.transport is not None:
                self.request.transport.close()

    # --- reading ----------------------------------------------------------------------

    async def _read(self) -> None:
        ws = self.ws
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind == WSMsgType.TEXT:
                request = self._accept(msg.data)
                if request is None:
                    continue
                if self.lenient:
                    self.requests.put_nowait(request)
                else:
                    await self._handle(*request)  # §1.3: handled completely before the next read
            elif kind == WSMsgType.PING:
                try:
                    async with self._locked():
                        await ws.pong(msg.data)  # Echo the payload (§1.8).
                except ConnectionError:
                    return
            elif kind == WSMsgType.PONG:
                self.awaiting_pong_since = None
            elif kind == WSMsgType.BINARY:
                logger.debug("< binary frame ignored (§1.5)")
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return

    def _locked(self) -> Any:
        """The send lock for one message in strict mode; a no-op context when lenient, or
        inside a crawl, which already holds it."""
        return _NO_LOCK if self.lenient or self.crawling else self.send_lock

    def _accept(self, text: str) -> tuple[str, Any] | None:
        """Return a well-formed request; None (and silence) on anything malformed (§1.5)."""
        try:
            envelope = orjson.loads(text)
        except orjson.JSONDecodeError:
            logger.debug("! malformed frame ignored: not JSON")
            return None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("request_type"), str) \
                or "data" not in envelope:
            logger.debug("! malformed frame ignored: bad envelope")
            return None
        return envelope["request_type"], envelope["data"]

    # --- sending ----------------------------------------------------------------------

    async def send(self, message_type: str, data: dict[str, Any]) -> None:
        """Send a message that the backpressure rules never drop (welcome, pong, status, error)."""
        async with self._locked():
            await self.ws.send_frame(wire.ws_envelope(message_type, data).encode(), WSMsgType.TEXT)
        self.message_count += 1

    async def send_stream(self, frame: bytes) -> bool:
        """Send a crawl stream message (metadata, result, summary); False if dropped (§1.9)."""
        if self.faults.delay > 0:
            await self.faults.pause()
        if self.bp.drop_enabled and self.bp.should_drop():
            self.bp.dropped += 1
            return False
        started = time.perf_counter()
        await self.ws.send_frame(frame, WSMsgType.TEXT)
        self.bp.record(time.perf_counter() - started)
        self.message_count += 1
        return True

    # --- keepalive --------------------------------------------------------------------

    async def _keepalive(self) -> None:
        """Ping right away and then every ``ping_interval``; close on a late pong (if set)."""
        loop = asyncio.get_running_loop()
        interval = self.state.config.ping_interval
        timeout = self.state.config.pong_timeout
        next_ping = loop.time()
        while True:
            now = loop.time()
            if self.frozen:
                await asyncio.sleep(interval)
                continue
            if timeout is not None and self.awaiting_pong_since is not None \
                    and now - self.awaiting_pong_since > timeout:
                logger.info("! closing session %s: pong more than %.3gs late", self.session_id, timeout)
                await self._close_dead()
                return
            if now >= next_ping:
                try:
                    lock = self.send_lock if not self.lenient else _NO_LOCK
                    async with lock:  # strict: waits for a running crawl's summary
                        payload = str(int(time.time() * 1000)).encode()
                        await self.ws.ping(payload)
                except ConnectionError:
                    return
                now = loop.time()
                if self.awaiting_pong_since is None:
                    self.awaiting_pong_since = now
                next_ping = now + interval
            wake = next_ping
            if timeout is not None and self.awaiting_pong_since is not None:
                wake = min(wake, self.awaiting_pong_since + timeout + 0.001)
            await asyncio.sleep(max(wake - loop.time(), 0.0))

    async def _close_dead(self) -> None:
        """Close with 1011 (as the ``websockets`` library does on a ping timeout)."""
        try:
            await asyncio.wait_for(self.ws.close(code=1011, message=b"keepalive ping timeout"), 1.0)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        if self.request.transport is not None:
            self.request.transport.abort()

    # --- requests ---------------------------------------------------------------------

    async def _worker(self) -> None:
        """Lenient mode: handle queued requests one at a time, in order."""
        try:
            while True:
                await self._handle(*await self.requests.get())
        except (StreamStopped, ConnectionError):
            pass

    async def _handle(self, request_type: str, data: Any) -> None:
        """Answer one request completely (a crawl up to its summary)."""
        if request_type == "crawl":
            if self.lenient:
                await self._crawl(data)
            else:
                async with self.send_lock:  # §1.8: held for the whole crawl
                    self.crawling = True
                    try:
                        await self._crawl(data)
                    finally:
                        self.crawling = False
        elif request_type == "ping":
            await self.send("pong", {"timestamp": wire.now_rfc3339(), "session_id": self.session_id})
        elif request_type == "status":
            await self.send("status", {
                "session_id": self.session_id,
                "connected_duration_ms": int((time.monotonic() - self.connected) * 1000),
                "is_healthy": not self.bp.slow, "message_count": self.message_count,
                "backpressure_count": self.bp.count})
        else:
            await self.send("error", {"error_type": "unknown_request",
                                      "message": f"Unknown request type: {request_type}"})

    async def _crawl(self, data: Any) -> None:
        state = self.state
        try:
            req = wire.parse_crawl_body(data)
        except wire.BodyShapeError as exc:
            logger.debug("! crawl ignored, body does not deserialize (§1.5): %s", exc)
            return
        try:
            wire.validate_crawl_request(req.urls, max_urls=state.config.max_urls_per_request,
                                        allow_private=state.config.private_allowed)
        except wire.ValidationFailure as exc:
            state.log_request("ws", req.urls, req.options, False, self.connection)
            await self.send("error", {"error_type": "validation_error", "message": exc.message})
            return
        state.log_request("ws", req.urls, req.options, True, self.connection)
        total = len(req.urls)
        started = time.perf_counter()
        await self.send_stream(wire.ws_envelope("metadata", {
            "total_urls": total, "session_id": self.session_id, "timestamp": wire.now_rfc3339(),
            "stream_type": "crawl"}).encode())
        completed = successful = 0
        size = state.config.synthetic_doc_size
        if size is not None:
            completed = successful = await self._synthetic_results(req, size)
        else:
            source = outcomes(state, req, state.config.stream_concurrency)
            try:
                async for item in source:
                    if self.bp.stop_stream:  # §1.9 rule 3: stop; results still to come are lost.
                        break
                    index, outcome = item
                    completed += 1
                    successful += outcome.ok
                    frame = wire.ws_envelope("result", {
                        "index": index, "result": result_for(outcome, "ws"),
                        "progress": {"completed": completed, "total": total,
                                     "success_rate": successful / completed}}).encode()
                    await self._result(outcome.url, frame)
            finally:
                await source.aclose()
        if state.config.faults.drop_summary_first and state.drop_summary():
            return
        await self.send_stream(wire.ws_envelope("summary", {
            "total_urls": total, "successful": successful, "failed": completed - successful,
            "total_processing_time_ms": int((time.perf_counter() - started) * 1000)}).encode())

    async def _synthetic_results(self, req: wire.CrawlRequest, size: int) -> int:
        """Send every result from a pre-serialized template; return how many completed.

        Without faults or drop rules, frames are framed here and written in batches of
        up to 64 per ``transport.write`` (the server must not be the benchmarks' bottleneck),
        the first one alone: time to first result must not wait for 63 more (at 64 KB
        documents, 4 MB and ~10 ms).
        """
        messages = SyntheticMessages.for_request(size, req.cache_mode, len(req.urls))
        template = messages.ws
        plain = not (self.faults.active or self.bp.drop_enabled or self.state.config.faults.drop_results_for)
        transport = self.request.transport
        completed = 0
        batch: list[bytes] = []
        for index, url in enumerate(req.urls):
            if self.bp.stop_stream:
                break
            completed += 1
            values = messages.values(index, completed, url)
            values["ts"] = b'"' + wire.now_rfc3339().encode() + b'"'
            frame = template.fill(values)
            if not plain or transport is None:
                await self._result(url, frame)
                if completed % 64 == 0:
                    await asyncio.sleep(0)  # Let the reader and keepalive run during long bursts.
                continue
            batch.append(_text_frame_header(len(frame)))
            batch.append(frame)
            if len(batch) >= 128 or completed == 1:  # the first result goes out at once
                await self._write_batch(transport, batch)
        if batch and transport is not None:
            await self._write_batch(transport, batch)
        return completed

    async def _write_batch(self, transport: Any, batch: list[bytes]) -> None:
        """Write whole frames at once, then yield; wait while the peer is not reading."""
        if transport.is_closing():
            raise StreamStopped("client gone")
        started = time.perf_counter()
        transport.write(b"".join(batch))
        frames = len(batch) // 2
        batch.clear()
        self.message_count += frames
        await asyncio.sleep(0)
        while transport.get_write_buffer_size() > 1024 * 1024 and not transport.is_closing():
            await asyncio.sleep(0.001)  # TCP backpressure: the client stopped reading.
        self.bp.record(time.perf_counter() - started)

    async def _result(self, url: str, frame: bytes) -> None:
        """Send one result frame, then apply whatever fault is due."""
        state = self.state
        if state.config.faults.drop_results_for and state.drop_result(url):
            return
        if not await self.send_stream(frame):
            return
        if not self.faults.active:
            return
        action = self.faults.after_result()
        if action == "malformed":
            await self.ws.send_frame(b'{"message_type":"result","data":{"index":', WSMsgType.TEXT)
            self.message_count += 1
        elif action == "drop":
            await drain_then_abort(self.request.transport)
            raise StreamStopped("drop")
        elif action == "freeze":
            self.frozen = True
            transport = self.request.transport
            if transport is not None:
                transport.pause_reading()
            await wait_until_gone(transport, state)
            raise StreamStopped("freeze")
