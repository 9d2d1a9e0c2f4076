"""One client run per process: ``python -m benchmarks.clients NAME BASE_URL COUNT``.

Each run streams ``COUNT`` synthetic results from the local server at ``BASE_URL`` and prints
one JSON line with what it measured. ``--chunk N`` (default 100, the real server's limit)
is the request pattern every client replays: the SDK gets ``max_urls_per_request=N`` and
chunks the list itself; every peer sends the same ``N``-URL requests, in the same order, one
after another on one connection (one ``requests.Session`` for NDJSON), each after the
previous request's summary. ``--chunk COUNT`` is the one-request case. One process per run means
the peak RSS (``VmHWM``) belongs to that client alone, and the server (another process)
never shares the client's GIL.

Warm-up: every client first runs one 10-URL crawl that is not measured (the slow-consumer
runs excepted), so imports and once-per-process costs stay out of the numbers, as in a
long-lived process.

Clock: ``t0`` is taken after the imports, just before the client opens its connection
(or, for the SDK, calls ``crawl_*``); ``ttfr`` is ``t0`` to the first ``result`` message,
``seconds`` is ``t0`` to the end of the stream (summary or EOF). CPU is user + system time
of this process over the same span (every thread, so the SDK's reader thread counts).

Clients (the SDK ones through the public API, default settings unless stated):

``sdk_ws`` / ``sdk_ndjson`` / ``sdk_sse``
    ``client.streaming.crawl_websocket`` / ``crawl_ndjson`` / ``crawl_sse``, iterated with
    a plain ``for``, default settings (``parallel`` included); ``max_urls_per_request`` is
    the chunk.
``sdk_ws_p1`` / ``sdk_ndjson_p1``
    the same with ``parallel=1`` (the chunks in sequence on one connection).
``wsclient``
    websocket-client ``create_connection`` + ``recv()`` + ``json.loads`` (UTF-8 check off,
    as the SDK's reader does not re-validate either).
``websockets_async``
    the ``websockets`` asyncio client (``async for`` + ``json.loads``), compression off:
    the transport pattern of the official async RipTide SDK.
``picows``
    picows (asyncio, Cython frame parser: the fastest Python WebSocket client we know of),
    a ``WSListener`` whose ``on_ws_frame`` runs ``json.loads`` on each frame's payload.
``websockets_sync``
    ``websockets.sync.client`` ``recv()`` + ``json.loads``, compression off.
``requests_ndjson``
    ``requests.post(stream=True)`` + ``iter_lines(chunk_size=65536)`` + ``json.loads``
    (64 KiB reads: the fastest setting for a bulk stream).
``raw_socket``
    the ceiling: a plain socket does the WebSocket handshake, sends the crawl frame and
    counts bytes until the summary frame, without parsing anything.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import sys
import time
from typing import Any, Callable

WS_PEERS = ("picows", "websockets_async", "websockets_sync", "wsclient")
SDK_CLIENTS = ("sdk_ws", "sdk_ndjson", "sdk_sse")
SDK_VARIANTS = {"sdk_ws_p1": ("sdk_ws", {"parallel": 1}),
                "sdk_ndjson_p1": ("sdk_ndjson", {"parallel": 1})}
"""Extra SDK clients: (transport client, settings that differ from the defaults)."""
CLIENTS = ("sdk_ws", "sdk_ws_p1", "sdk_ndjson", "sdk_ndjson_p1", "sdk_sse", "picows",
           "websockets_async", "websockets_sync", "wsclient", "requests_ndjson", "raw_socket")
DEFAULT_CHUNK = 100
"""URLs per request: the real server's limit."""


def urls_for(count: int) -> list[str]:
    """The URL list every client requests (the synthetic server fetches nothing)."""
    return [f"https://example.org/page/{i}" for i in range(count)]


def chunks_of(urls: list[str], chunk: int) -> list[list[str]]:
    """The requests every client sends, in order (the SDK's own chunking: consecutive
    slices of at most ``chunk`` URLs)."""
    return [urls[i : i + chunk] for i in range(0, len(urls), chunk)]


def _crawl_frame_text(urls: list[str]) -> str:
    return json.dumps({"request_type": "crawl", "data": {"urls": urls}}, separators=(",", ":"))


def _proc_status_kb(field: str) -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_now_kb() -> int:
    """Current resident set size in KiB (Linux /proc; 0 elsewhere)."""
    return _proc_status_kb("VmRSS")


def peak_rss_kb() -> int:
    """Peak RSS of this process in KiB: ``VmHWM``. ``ru_maxrss`` is not used on Linux
    because exec() carries the forking parent's high-water mark into it."""
    return _proc_status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Meter:
    """Counts results and bytes, and notes the time of the first result."""

    __slots__ = ("t0", "first", "results", "bytes")

    def __init__(self) -> None:
        global _LAST_METER
        _LAST_METER = self
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.results = 0
        self.bytes = 0

    def result(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.results += 1


# --- the clients: each returns a Meter once the stream has ended -----------------------------


def run_sdk(transport: str, base: str, urls: list[str], chunk: int,
            **client_kwargs: Any) -> Meter:
    from riptide_sync import RipTideClient

    pace = client_kwargs.pop("pace", 0.0)
    with RipTideClient(base, max_urls_per_request=min(chunk, max(1, len(urls))), timeout=300.0,
                       **client_kwargs) as client:
        crawl = {"sdk_ws": client.streaming.crawl_websocket,
                 "sdk_ndjson": client.streaming.crawl_ndjson,
                 "sdk_sse": client.streaming.crawl_sse}[transport]
        meter = Meter()
        stream = crawl(urls)
        try:
            if pace:
                _paced(stream, meter, pace)
            else:
                for event in stream:
                    if event.event_type == "result":
                        meter.result()
        finally:
            meter.bytes = stream.stats.bytes_received
            _STATS.update(stream.stats.as_dict())
            stream.close()
    return meter


def _paced(stream: Any, meter: Meter, pace: float) -> None:
    """Consume one event every ``pace`` seconds at most (a slow consumer)."""
    sleep, clock = time.sleep, time.perf_counter
    due = clock()
    for event in stream:
        if event.event_type == "result":
            meter.result()
        due += pace
        delay = due - clock()
        if delay > 0:
            sleep(delay)


_STATS: dict[str, Any] = {}
_LAST_METER: Meter | None = None


def run_wsclient(base: str, urls: list[str], chunk: int) -> Meter:
    import websocket

    meter = Meter()  # the clock starts before connecting, as for every client
    ws = websocket.create_connection(_ws_url(base), skip_utf8_validation=True, timeout=300)
    try:
        ws.recv()  # welcome
        for part in chunks_of(urls, chunk):
            ws.send(_crawl_frame_text(part))
            _drain_ws(ws.recv, meter)
        return meter
    finally:
        ws.close()


def _drain_ws(recv: Any, meter: Meter) -> Meter:
    """The loop a user writes over a blocking WebSocket: recv, json.loads, until summary."""
    loads = json.loads
    while True:
        raw = recv()
        meter.bytes += len(raw)
        kind = loads(raw).get("message_type")
        if kind == "result":
            meter.result()
        elif kind == "summary":
            return meter
        elif kind == "error":
            raise RuntimeError(f"the server answered an error: {raw[:200]!r}")


def run_websockets_async(base: str, urls: list[str], chunk: int) -> Meter:
    import asyncio

    from websockets.asyncio.client import connect

    async def main() -> Meter:
        loads = json.loads
        meter = Meter()
        async with connect(_ws_url(base), max_size=None, compression=None,
                           ping_interval=None) as ws:
            await ws.recv()  # welcome
            for part in chunks_of(urls, chunk):
                await ws.send(_crawl_frame_text(part))
                async for raw in ws:
                    meter.bytes += len(raw)
                    kind = loads(raw).get("message_type")
                    if kind == "result":
                        meter.result()
                    elif kind == "summary":
                        break
                    elif kind == "error":
                        raise RuntimeError(f"the server answered an error: {raw[:200]!r}")
        return meter

    return asyncio.run(main())


def run_picows(base: str, urls: list[str], chunk: int) -> Meter:
    """picows: a listener gets each frame in the protocol's data_received callback."""
    import asyncio

    from picows import WSListener, WSMsgType, ws_connect

    parts = chunks_of(urls, chunk)
    loads = json.loads

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.meter: Meter | None = None
            self.done: asyncio.Future[Meter] = asyncio.get_running_loop().create_future()
            self.next_part = 0

        def send_next(self, transport: Any) -> None:
            part = parts[self.next_part]
            self.next_part += 1
            transport.send(WSMsgType.TEXT, _crawl_frame_text(part).encode())

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                if frame.msg_type == WSMsgType.CLOSE and not self.done.done():
                    self.done.set_exception(RuntimeError("the server closed the connection"))
                return
            raw = frame.get_payload_as_bytes()
            kind = loads(raw).get("message_type")
            meter = self.meter
            assert meter is not None
            meter.bytes += len(raw)
            if kind == "result":
                meter.result()
            elif kind == "welcome":
                self.send_next(transport)
            elif kind == "summary":
                if self.next_part < len(parts):
                    self.send_next(transport)
                elif not self.done.done():
                    self.done.set_result(meter)
            elif kind == "error" and not self.done.done():
                self.done.set_exception(RuntimeError(f"the server answered an error: {raw[:200]!r}"))

    async def main() -> Meter:
        meter = Meter()
        listener_box: list[Listener] = []

        def factory() -> Listener:
            listener = Listener()
            listener.meter = meter
            listener_box.append(listener)
            return listener

        transport, listener = await ws_connect(factory, _ws_url(base), max_frame_size=1 << 30)
        try:
            return await listener.done
        finally:
            transport.disconnect()

    return asyncio.run(main())


def run_websockets_sync(base: str, urls: list[str], chunk: int) -> Meter:
    from websockets.sync.client import connect

    meter = Meter()  # the clock starts before connecting, as for every client
    with connect(_ws_url(base), max_size=None, compression=None) as ws:
        ws.recv()  # welcome
        for part in chunks_of(urls, chunk):
            ws.send(_crawl_frame_text(part))
            _drain_ws(ws.recv, meter)
        return meter


def run_requests_ndjson(base: str, urls: list[str], chunk: int) -> Meter:
    """One Session (a pooled connection) and one streamed POST per chunk."""
    import requests

    loads = json.loads
    meter = Meter()
    with requests.Session() as session:
        for part in chunks_of(urls, chunk):
            with session.post(base + "/crawl/stream", json={"urls": part}, stream=True,
                              timeout=300) as response:
                response.raise_for_status()
                for line in response.iter_lines(chunk_size=65536):
                    if not line:
                        continue
                    meter.bytes += len(line)
                    if "result" in loads(line):
                        meter.result()
    return meter


_SUMMARY_MARK = b'"message_type":"summary"'


def run_raw_socket(base: str, urls: list[str], chunk: int) -> Meter:
    """The ceiling: handshake, one masked crawl frame, then count bytes until the summary.

    The frame header of the first result is not parsed: ``ttfr`` is the first byte after
    the welcome; the summary is found by its ``"message_type":"summary"`` text, which no
    result can contain (documents carry no quotes).
    """
    import socket

    host, port = base.split("//", 1)[1].rsplit(":", 1)
    meter = Meter()
    sock = socket.create_connection((host, int(port)))
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /crawl/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        rest = head.split(b"\r\n\r\n", 1)[1]
        while b"welcome" not in rest:
            rest += sock.recv(65536)
        recv = sock.recv
        total = 0
        for part in chunks_of(urls, chunk):
            sock.sendall(_masked_frame(_crawl_frame_text(part).encode()))
            tail = b""
            while True:
                data = recv(1 << 20)
                if not data:
                    raise RuntimeError("the server closed the connection")
                if meter.first is None:
                    meter.first = time.perf_counter()
                total += len(data)
                window = tail + data[:64]
                if _SUMMARY_MARK in window or _SUMMARY_MARK in data[-4096:]:
                    break
                tail = data[-64:]
        meter.bytes = total
        meter.results = len(urls)
    finally:
        sock.close()
    return meter


def _masked_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    mask = b"\x00\x00\x00\x00"  # a zero mask is a valid mask (RFC 6455 §5.3) and costs nothing
    return head + mask + payload


def _ws_url(base: str) -> str:
    return "ws" + base[len("http"):] + "/crawl/ws"


RUNNERS: dict[str, Callable[..., Meter]] = {
    "wsclient": run_wsclient,
    "picows": run_picows,
    "websockets_async": run_websockets_async,
    "websockets_sync": run_websockets_sync,
    "requests_ndjson": run_requests_ndjson,
    "raw_socket": run_raw_socket,
}


def measure(name: str, base: str, count: int, chunk: int = DEFAULT_CHUNK,
            **sdk_kwargs: Any) -> dict[str, Any]:
    """Run one client once in this process and return its measurements."""
    urls = urls_for(count)
    fn: Callable[..., Meter]
    if name in SDK_CLIENTS or name in SDK_VARIANTS:
        transport, settings = SDK_VARIANTS.get(name, (name, {}))
        kwargs = {**settings, **sdk_kwargs}
        fn = lambda base, urls: run_sdk(transport, base, urls, chunk, **dict(kwargs))
    else:
        runner = RUNNERS[name]
        fn = lambda base, urls: runner(base, urls, chunk)
    # Warm-up: one small crawl, not measured, so that imports and first-use costs (lazy
    # imports, code paths run once per process) stay out of the numbers, as in any
    # long-lived process. Same for every client.
    if not sdk_kwargs.get("pace"):
        fn(base, urls_for(10))
    run: Callable[[], Meter] = lambda: fn(base, urls)
    rss_before = rss_now_kb()
    cpu0 = _cpu()
    error = None
    try:
        meter = run()
    except Exception as exc:  # reported, not raised: the harness shows it in the table
        meter = _LAST_METER if _LAST_METER is not None else Meter()
        error = f"{type(exc).__name__}: {exc}"[:300]
    end = time.perf_counter()
    cpu = _cpu() - cpu0
    return {
        "client": name, "count": count, "chunk": chunk, "results": meter.results,
        "bytes": meter.bytes,
        "seconds": end - meter.t0,
        "ttfr_ms": None if meter.first is None else (meter.first - meter.t0) * 1000.0,
        "cpu_seconds": cpu,
        "rss_before_kb": rss_before,
        "peak_rss_kb": peak_rss_kb(),
        "stats": dict(_STATS), "error": error,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark client run (see module doc)")
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("base_url")
    parser.add_argument("count", type=int)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                        help="URLs per request (default 100, the real server's limit)")
    parser.add_argument("--overflow", default=None)
    parser.add_argument("--queue-size", type=int, default=None)
    parser.add_argument("--pace", type=float, default=0.0,
                        help="slow consumer: seconds per event (SDK clients only)")
    parser.add_argument("--retry", default=None,
                        help="'none', or 'fast' (4 attempts, no backoff), or 'default'")
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {}
    if args.overflow:
        kwargs["overflow"] = args.overflow
    if args.queue_size:
        kwargs["queue_size"] = args.queue_size
    if args.pace:
        kwargs["pace"] = args.pace
    if args.retry == "none":
        kwargs["retry"] = None
    elif args.retry == "fast":
        from riptide_sync import RetryPolicy

        kwargs["retry"] = RetryPolicy(max_attempts=50, initial_backoff=0.0, jitter=0.0)
    report = measure(args.client, args.base_url, args.count, args.chunk, **kwargs)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
