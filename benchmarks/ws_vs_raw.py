"""WebSocket transport vs a raw websocket-client loop: events/s over loopback.

Streams N synthetic ``result`` messages (200 B and 4 KB documents) per run through
``WebSocketTransport`` (events counted as they leave ``receive()``, decoded into
``StreamingResult``) and through a raw websocket-client ``recv()`` + ``json.loads`` loop
against the same server, rounds interleaved (the order alternates each round), and prints
the median events/s of each and their ratio (target: >= 0.9).

Two servers, each in its own process so that it does not share the client's GIL:

``local``
    ``riptide-sync serve --synthetic-size SIZE --max-urls N`` (the project's server).
    It is the realistic case, but a Python server may itself be the bottleneck.
``blast``
    A tiny sender in this file: after the handshake and the crawl request it writes one
    pre-encoded blob of frames, so the client side is measured on its own.

Usage::

    .venv/bin/python -m benchmarks.ws_vs_raw                    # both servers, 40,000 x 2 sizes
    .venv/bin/python -m benchmarks.ws_vs_raw --servers blast --rounds 3 --count 10000
    .venv/bin/python -m benchmarks.ws_vs_raw --decode reader    # decode on the reader thread

Writes a JSON summary when ``--json PATH`` is given.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import socket
import statistics
import sys
import time
import urllib.request
from typing import Any, Callable, Iterator

from benchmarks._process import background, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --- the blast sender (runs in a subprocess) -------------------------------------------------


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 65536:
        head = bytes([0x81, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + n.to_bytes(8, "big")
    return head + payload


def _message(message_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"message_type": message_type, "data": data,
                       "timestamp": "2025-11-07T12:00:00.104902+00:00"},
                      separators=(",", ":")).encode()


def build_blob(count: int, size: int) -> bytes:
    """Frames of metadata, ``count`` results with ``size``-byte documents, and a summary."""
    text = ("riptide synthetic document " * (size // 27 + 1))[:size]
    parts = [_frame(_message("metadata", {"session_id": "s", "stream_type": "crawl",
                                          "timestamp": "t", "total_urls": count}))]
    for i in range(count):
        result = {"cache_key": "", "document": {"text": text, "title": "Synthetic",
                  "url": f"https://example.org/{i}"}, "error": None, "from_cache": False,
                  "gate_decision": "raw", "processing_time_ms": 1, "quality_score": 0.9,
                  "status": 200, "url": f"https://example.org/{i}"}
        parts.append(_frame(_message("result", {"index": i, "progress": {
            "completed": i + 1, "success_rate": 1.0, "total": count}, "result": result})))
    parts.append(_frame(_message("summary", {"failed": 0, "successful": count,
                                             "total_processing_time_ms": 1,
                                             "total_urls": count})))
    return b"".join(parts)


def _read_frame(conn: socket.socket, buf: bytearray) -> tuple[int, bytes] | None:
    """Read one (masked) client frame; None at EOF."""
    def need(n: int) -> bool:
        while len(buf) < n:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            buf.extend(chunk)
        return True

    if not need(2):
        return None
    opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
    head = 2
    if length == 126:
        if not need(4):
            return None
        length, head = int.from_bytes(buf[2:4], "big"), 4
    elif length == 127:
        if not need(10):
            return None
        length, head = int.from_bytes(buf[2:10], "big"), 10
    if not need(head + 4 + length):
        return None
    mask = buf[head : head + 4]
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[head + 4 : head + 4 + length]))
    del buf[: head + 4 + length]
    return opcode, payload


def serve_blast(port: int, count: int, size: int) -> None:
    """Serve connections one at a time: handshake, welcome, blob per crawl, pong pings."""
    blob = build_blob(count, size)
    welcome = _frame(_message("welcome", {"session_id": "blast", "protocol_version": "1.0"}))
    listener = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            key = ""
            for line in request.decode("latin-1").split("\r\n"):
                if line.lower().startswith("sec-websocket-key:"):
                    key = line.split(":", 1)[1].strip()
            accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                          + "\r\n\r\n").encode() + welcome)
            buf = bytearray()
            while True:
                try:
                    frame = _read_frame(conn, buf)
                except OSError:
                    break
                if frame is None or frame[0] == 0x8:
                    break
                if frame[0] == 0x9:
                    conn.sendall(bytes([0x8A, len(frame[1])]) + frame[1])
                elif frame[0] == 0x1:
                    conn.sendall(blob)


# --- the client loops ------------------------------------------------------------------------


def run_raw(ws_url: str, urls: list[str]) -> tuple[int, float]:
    """websocket-client recv() + json.loads until the summary; (events, seconds)."""
    import websocket

    ws = websocket.create_connection(ws_url, skip_utf8_validation=True, timeout=60)
    try:
        json.loads(ws.recv())  # welcome
        started = time.perf_counter()
        ws.send(json.dumps({"request_type": "crawl", "data": {"urls": urls}}))
        events = 0
        recv, loads = ws.recv, json.loads
        while True:
            message = loads(recv())
            events += 1
            if message.get("message_type") == "summary":
                break
        return events, time.perf_counter() - started
    finally:
        ws.close()


def run_transport(ws_url: str, urls: list[str], decode: str) -> tuple[int, float]:
    """WebSocketTransport.open_crawl + receive() until the summary; (events, seconds)."""
    from riptide_sync._config import ClientConfig
    from riptide_sync._transport import StreamStats
    from riptide_sync._ws import WebSocketTransport

    config = ClientConfig(base_url="http://127.0.0.1", timeout=60.0)
    on_reader = {"reader": True, "consumer": False}.get(decode)
    transport = WebSocketTransport(config, StreamStats(), url=ws_url, _decode_on_reader=on_reader)
    try:
        transport._connect()  # handshake + welcome outside the timed part, as for raw
        started = time.perf_counter()
        source = transport.open_crawl(urls, None)
        events = 0
        receive = source.receive
        while True:
            event = receive(60.0)
            if event.event_type == "welcome":
                continue
            events += 1
            if event.event_type == "summary":
                break
        return events, time.perf_counter() - started
    finally:
        transport.close()


# --- servers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def start_server(kind: str, count: int, size: int) -> Iterator[str]:
    port = free_port()
    if kind == "blast":
        cmd = [sys.executable, "-m", "benchmarks.ws_vs_raw", "--serve-blast", str(port), str(count), str(size)]

        def ready() -> None:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.2)  # it accepts before the blob is built: let it finish
    else:
        cmd = [sys.executable, "-m", "riptide_sync", "serve", "--port", str(port),
               "--synthetic-size", str(size), "--max-urls", str(count),
               "--ping-interval", "3600", "--pong-timeout", "3600"]

        def ready() -> None:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()

    with background(cmd, ready, cwd=ROOT, poll=0.1):
        yield f"ws://127.0.0.1:{port}/crawl/ws"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--sizes", default="200,4096")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default="local,blast")
    parser.add_argument("--decode", choices=["auto", "consumer", "reader"], default="auto")
    parser.add_argument("--json", default=None)
    parser.add_argument("--serve-blast", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_blast:
        serve_blast(*args.serve_blast)
        return 0

    urls = [f"https://example.org/{i}" for i in range(args.count)]
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}; {args.count} results/run, "
          f"{args.rounds} rounds, decode={args.decode}")
    print(f"{'server':<6} {'doc':>6} {'raw ev/s':>10} {'transport ev/s':>15} {'ratio':>6}")
    report: list[dict[str, Any]] = []
    for kind in args.servers.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            with start_server(kind, args.count, size) as ws_url:
                loops: dict[str, Callable[[], tuple[int, float]]] = {
                    "raw": lambda: run_raw(ws_url, urls),
                    "transport": lambda: run_transport(ws_url, urls, args.decode),
                }
                rates: dict[str, list[float]] = {"raw": [], "transport": []}
                loops["raw"]()  # warm-up (server caches, page cache, imports)
                for round_ in range(args.rounds):
                    order = ["raw", "transport"] if round_ % 2 == 0 else ["transport", "raw"]
                    for name in order:
                        events, seconds = loops[name]()
                        assert events == args.count + 2, (name, events)
                        rates[name].append(events / seconds)
                raw = statistics.median(rates["raw"])
                ours = statistics.median(rates["transport"])
                print(f"{kind:<6} {size:>6} {raw:>10,.0f} {ours:>15,.0f} {ours / raw:>6.2f}",
                      flush=True)
                report.append({"server": kind, "doc_size": size, "raw_eps": raw,
                               "transport_eps": ours, "ratio": ours / raw,
                               "raw_runs": rates["raw"], "transport_runs": rates["transport"]})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"count": args.count, "rounds": args.rounds, "decode": args.decode,
                       "python": platform.python_version(), "cpus": os.cpu_count(),
                       "results": report}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
