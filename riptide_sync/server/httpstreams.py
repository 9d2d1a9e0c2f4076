"""The local server's streaming HTTP surfaces: NDJSON ``POST /crawl/stream`` (docs/protocol.md
§2, variant A) and SSE ``POST /crawl/sse`` (§3), with the buffered writer both use, which
also applies the fault scenarios (cut, drop, freeze, malformed lines, backpressure).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from . import wire
from .crawler import Outcome, result_for
from .httpapi import Rejected, aclosing, outcomes, read_crawl_body, validated_body
from .middleware import STATE, compression_for, json_response
from .state import Backpressure, FaultRunner, ServerState, StreamStopped, drain_then_abort, wait_until_gone
from .synthetic import SyntheticMessages

__all__ = ["ndjson_crawl", "sse_crawl", "sse_event"]

_FLUSH_BYTES = 64 * 1024
"""Bytes buffered before a write: one chunk per 64 KiB of lines or events."""

# --- NDJSON -----------------------------------------------------------------------------

class _LineWriter:
    """Buffers NDJSON lines or SSE events into large chunked writes; applies faults."""

    def __init__(self, request: web.Request, response: web.StreamResponse, faults: FaultRunner,
                 backpressure: Backpressure) -> None:
        self.request = request
        self.response = response
        self.faults = faults
        self.bp = backpressure
        self.buffer: list[bytes] = []
        self.size = 0
        self.lines = 0

    async def put(self, data: bytes, *, droppable: bool = True) -> bool:
        """Queue one line/event; False if the backpressure scenario dropped it."""
        if droppable and self.bp.drop_enabled and self.bp.should_drop():
            self.bp.dropped += 1
            return False
        cut = self.faults.cut_at
        if cut is not None and self.lines == cut:
            self.buffer.append(data[: len(data) // 2])
            await self.flush()
            await self.response.write_eof()
            raise StreamStopped("cut")
        if self.faults.delay > 0:
            await self.flush()
            await self.faults.pause()
        self.buffer.append(data)
        self.size += len(data)
        self.lines += 1
        if self.size >= _FLUSH_BYTES or self.faults.delay > 0:
            await self.flush()
        return True

    async def flush(self) -> None:
        """Write what is buffered as one chunk."""
        if not self.buffer:
            return
        data = b"".join(self.buffer)
        self.buffer.clear()
        self.size = 0
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise StreamStopped("client gone")
        started = time.perf_counter()
        try:
            await self.response.write(data)
        except (ConnectionError, RuntimeError) as exc:
            raise StreamStopped("client gone") from exc
        self.bp.record(time.perf_counter() - started)

    async def after_result(self, malformed: bytes, state: ServerState) -> None:
        """Apply the fault due after a sent result, if any."""
        action = self.faults.after_result()
        if action is None:
            return
        if action == "malformed":
            self.buffer.append(malformed)
            self.lines += 1
            return
        await self.flush()
        if action == "drop":
            await drain_then_abort(self.request.transport)
            raise StreamStopped("drop")
        await wait_until_gone(self.request.transport, state)  # freeze
        raise StreamStopped("freeze")


async def _stream_response(request: web.Request, content_type: str, extra: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={
        "Content-Type": content_type, "Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*", **extra})
    response.enable_chunked_encoding()
    coding = compression_for(request) if content_type != "text/event-stream" else None
    if coding is not None:
        # §2.2: NDJSON is compressed for a client that accepts it; the compressor holds
        # lines back until its buffer fills or the body ends (hence Accept-Encoding:
        # identity in streaming clients).
        response.enable_compression(coding)
    await response.prepare(request)
    return response


async def _serve(request: web.Request, response: web.StreamResponse, transport: str,
                 body: Callable[[_LineWriter], Awaitable[None]]) -> web.StreamResponse:
    """Write a stream's ``body`` through a :class:`_LineWriter` with ``transport``'s faults,
    counted as an open stream; a client gone or a fault that stops it ends it quietly."""
    state = request.app[STATE]
    state.counters.streams_open += 1
    out = _LineWriter(request, response, FaultRunner(state, transport),
                      Backpressure(state.config.faults.backpressure_drop, state.config.faults.slow_send_threshold))
    try:
        await body(out)
        await out.flush()
        await response.write_eof()
    except StreamStopped:
        pass
    finally:
        state.counters.streams_open -= 1
    return response


async def ndjson_crawl(request: web.Request) -> web.StreamResponse:
    """``POST /crawl/stream`` (§2, variant A): count checks only, untagged lines."""
    state = request.app[STATE]
    try:
        req = await read_crawl_body(request)
    except Rejected as exc:
        return exc.response
    connection = state.next_connection_id()
    limit = max(1000, state.config.max_urls_per_request)
    error = None
    if not req.urls:
        error = "urls list cannot be empty"
    elif len(req.urls) > limit:
        error = f"urls list cannot exceed {limit} items"
    state.log_request("ndjson", req.urls, req.options, error is None, connection)
    if error is not None:
        return json_response({"error": error}, status=400)
    request_id = wire.new_id()
    response = await _stream_response(request, "application/x-ndjson", {"X-Request-ID": request_id})
    return await _serve(request, response, "ndjson",
                        lambda out: _ndjson_body(state, req, request_id, out))


async def _ndjson_body(state: ServerState, req: wire.CrawlRequest, request_id: str, out: _LineWriter) -> None:
    total = len(req.urls)
    started_wall, started = wire.now_rfc3339(), time.perf_counter()
    epoch0 = time.time()
    await out.put(wire.dumps({"total_urls": total, "request_id": request_id, "timestamp": started_wall,
                              "stream_type": "crawl"}) + b"\n", droppable=False)
    size = state.config.synthetic_doc_size
    synthetic = SyntheticMessages.for_request(size, req.cache_mode, total) if size is not None else None
    source = _synthetic_items(req) if synthetic else outcomes(state, req, state.config.stream_concurrency)
    async with aclosing(source):
        completed, successful, cached = await _ndjson_results(
            state, req, out, source, synthetic, started, started_wall, epoch0)
    if state.config.faults.drop_summary_first and state.drop_summary():
        return
    await out.put(wire.dumps({
        "total_urls": total, "successful": successful, "failed": completed - successful,
        "from_cache": cached, "total_processing_time_ms": int((time.perf_counter() - started) * 1000),
        "cache_hit_rate": cached / total}) + b"\n", droppable=False)


class _Tally:
    """The counts of one streamed crawl, as its progress lines and summary report them."""

    __slots__ = ("completed", "successful", "cached")

    def __init__(self) -> None:
        self.completed = self.successful = self.cached = 0

    async def add(self, req: wire.CrawlRequest, index: int, outcome: Outcome | None) -> str:
        """Count one result and return its URL; ``outcome`` None: a synthetic result (a
        success, never cached; every 256th yields to the loop, which a synthetic stream
        otherwise never does)."""
        self.completed += 1
        if outcome is None:
            self.successful += 1
            if self.completed % 256 == 0:
                await asyncio.sleep(0)
            return req.urls[index]
        self.successful += outcome.ok
        self.cached += outcome.from_cache
        return outcome.url


def _eta(epoch0: float, elapsed: float, completed: int, total: int) -> str:
    """``estimated_completion`` (RFC 3339) after ``completed`` of ``total`` in ``elapsed``
    s; at 100% the real server sends the current time, not null."""
    if completed < total:
        return wire.rfc3339_at(epoch0 + elapsed / completed * total)
    return wire.now_rfc3339()


async def _ndjson_results(state: ServerState, req: wire.CrawlRequest, out: _LineWriter, source: Any,
                          synthetic: SyntheticMessages | None, started: float, started_wall: str,
                          epoch0: float) -> tuple[int, int, int]:
    total = len(req.urls)
    malformed = b'{"index":0,"result":{"url":\n'
    tally = _Tally()
    async for item in source:
        index, outcome = item
        url = await tally.add(req, index, None if synthetic is not None else outcome)
        completed, successful = tally.completed, tally.successful
        if synthetic is not None:
            line = synthetic.ndjson.fill(synthetic.values(index, completed, url))
        else:
            line = wire.dumps({"index": index, "result": result_for(outcome, "ndjson"), "progress": {
                "completed": completed, "total": total, "success_rate": successful / completed}}) + b"\n"
        if state.config.faults.drop_results_for and state.drop_result(url):
            continue
        # §2.5: when a result line is dropped, the progress line after it is skipped too.
        if not await out.put(line):
            continue
        if completed == 1:
            await out.flush()  # the first result at once, not after 64 KiB of others
        if total > 10 and completed % 5 == 0:
            eta = _eta(epoch0, time.perf_counter() - started, completed, total)
            await out.put(wire.dumps({
                "operation_id": "crawl_stream", "operation_type": "batch_crawl", "started_at": started_wall,
                "current_phase": "processing", "progress_percentage": completed * 100.0 / total,
                "items_completed": completed, "items_total": total, "estimated_completion": eta,
                "current_item": url}) + b"\n", droppable=False)
        if out.faults.active:
            await out.after_result(malformed, state)
        if synthetic is None:
            await out.flush()
    return tally.completed, tally.successful, tally.cached


async def _synthetic_items(req: wire.CrawlRequest) -> Any:
    for index in range(len(req.urls)):
        yield index, None


# --- SSE --------------------------------------------------------------------------------

def sse_event(name: str, data: bytes, *, event_id: int | None = None, retry: int | None = None) -> bytes:
    """Encode one event as axum does: no space after the colon (§3)."""
    out = b"event:" + name.encode() + b"\ndata:" + data + b"\n"
    if event_id is not None:
        out += b"id:" + str(event_id).encode() + b"\n"
    if retry is not None:
        out += b"retry:" + str(retry).encode() + b"\n"
    return out + b"\n"


async def sse_crawl(request: web.Request) -> web.StreamResponse:
    """``POST /crawl/sse`` (§3): named events, shared ids, heartbeats, ``complete``."""
    state = request.app[STATE]
    try:
        req, connection, failure = await validated_body(request, "sse")
    except Rejected as exc:
        return exc.response
    if failure is not None:
        # §3 [quirk]: HTTP 500, and the type is always validation_error.
        body = b"event: error\ndata: " + wire.dumps({"error": {"type": "validation_error",
                                                               "message": failure.message,
                                                               "retryable": False}}) + b"\n\n"
        return web.Response(status=500, body=body, headers={"Content-Type": "text/event-stream",
                                                             "Cache-Control": "no-cache"})
    response = await _stream_response(request, "text/event-stream", {})
    return await _serve(request, response, "sse", lambda out: _sse_body(state, req, out))


async def _sse_body(state: ServerState, req: wire.CrawlRequest, out: _LineWriter) -> None:
    total = len(req.urls)
    started = time.perf_counter()
    epoch0 = time.time()
    await out.put(sse_event("metadata", wire.dumps({
        "total_urls": total, "request_id": wire.new_id(), "timestamp": wire.now_rfc3339(),
        "stream_type": "crawl", "retry_interval_ms": 5000}), retry=5000))
    await out.flush()
    size = state.config.synthetic_doc_size
    synthetic = SyntheticMessages.for_request(size, req.cache_mode, total) if size is not None else None
    keepalive = state.config.sse_keepalive
    source = _synthetic_items(req) if synthetic else outcomes(state, req, state.config.stream_concurrency, keepalive)
    async with aclosing(source):
        completed, successful, cached = await _sse_results(state, req, out, source, synthetic, started, epoch0)
    if state.config.faults.drop_summary_first and state.drop_summary():
        return
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    await out.put(sse_event("complete", wire.dumps({
        "total_urls": total, "successful": successful, "failed": completed - successful, "from_cache": cached,
        "total_processing_time_ms": elapsed_ms, "cache_hit_rate": cached / total,
        "average_processing_time_ms": float(elapsed_ms) / successful if successful else 0.0}), retry=5000))


async def _sse_results(state: ServerState, req: wire.CrawlRequest, out: _LineWriter, source: Any,
                       synthetic: SyntheticMessages | None, started: float, epoch0: float) -> tuple[int, int, int]:
    total = len(req.urls)
    tally = _Tally()
    async for item in source:
        if item is None:
            # §3: a comment whose text is ":heartbeat" after keep_alive seconds without events.
            await out.put(b"::heartbeat\n\n", droppable=False)
            await out.flush()
            continue
        index, outcome = item
        url = await tally.add(req, index, None if synthetic is not None else outcome)
        completed, successful, cached = tally.completed, tally.successful, tally.cached
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        if synthetic is not None:
            values = synthetic.values(index, completed, url)
            values["elapsed"] = str(elapsed_ms).encode()
            result_event = synthetic.sse.fill(values)
        else:
            result_event = sse_event("result", wire.dumps({
                "index": index, "result": result_for(outcome, "sse"), "processing_time_ms": elapsed_ms}),
                event_id=index)
        if state.config.faults.drop_results_for and state.drop_result(url):
            continue
        await out.put(sse_event("progress", wire.dumps({
            "completed": completed, "total": total, "success_rate": successful / completed,
            "cache_hit_rate": cached / successful if successful else 0.0}), event_id=index))
        await out.put(result_event)
        if completed == 1:
            await out.flush()  # the first result at once, not after 64 KiB of others
        if total > 20 and completed % 10 == 0:
            elapsed = time.perf_counter() - started
            eta = _eta(epoch0, elapsed, completed, total)
            await out.put(sse_event("status", wire.dumps({
                "phase": "processing", "items_processed": completed, "items_remaining": total - completed,
                "estimated_completion": eta,
                "throughput_per_minute": completed / max(elapsed, 1e-6) * 60.0})))
        if out.faults.active:
            await out.after_result(b"event:result\ndata:{\"index\":\n\n", state)
        if synthetic is None:
            await out.flush()
    return tally.completed, tally.successful, tally.cached
