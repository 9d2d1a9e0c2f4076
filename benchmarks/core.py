"""The core benchmark: the pure ``protocol/`` decoders and event construction, in-process.

No sockets, threads or server: bytes built here are fed to the decoders in 64 KiB chunks
(the size the HTTP transports read), so the numbers show what the SDK's own parsing costs
per event, free of network noise (docs/style.md §7, "Two kinds of benchmark").

Cases, each timed over the same messages (a synthetic ``result`` of the given document
size, shaped as the local server sends it):

``ws decode_message``
    one WebSocket payload (bytes) -> ``StreamingResult`` (``json.loads`` + envelope checks).
``ndjson feed+classify``
    ``NDJSONDecoder.feed`` over the body in chunks, ``classify_line`` on every line.
``sse feed+to_event``
    ``SSEDecoder.feed`` over the body in chunks, ``sse_to_event`` on every event.
``json.loads only``
    the floor under all three: the stdlib parse of the same payloads.
``StreamingResult()``
    constructing the event object from an already parsed dict.
``.result (typed)``
    the lazy typed view: ``CrawlResult`` validated by pydantic on first access.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Callable

CHUNK = 65536


def _document_text(size: int) -> str:
    return ("riptide synthetic document text stream " * (size // 39 + 1))[:size]


def _result(i: int, size: int) -> dict[str, Any]:
    url = f"https://example.org/page/{i}"
    return {"url": url, "status": 200, "from_cache": False, "gate_decision": "raw",
            "quality_score": 0.9, "processing_time_ms": 0, "error": None,
            "cache_key": f"riptide:v1:read_write:{i:016x}",
            "document": {"url": url, "title": "Synthetic page", "text": _document_text(size),
                         "markdown": None, "links": [], "media": [], "language": "en",
                         "reading_time": 1, "quality_score": 90, "word_count": size // 6}}


def build_payloads(count: int, size: int) -> dict[str, Any]:
    """The same ``count`` results as WS payloads, an NDJSON body and an SSE body."""
    ws: list[bytes] = []
    ndjson: list[bytes] = []
    sse: list[bytes] = []
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    for i in range(count):
        progress = {"completed": i + 1, "total": count, "success_rate": 1.0}
        data = {"index": i, "progress": progress, "result": _result(i, size)}
        ws.append(dumps({"message_type": "result", "data": data,
                         "timestamp": "2025-11-07T12:00:00.104902+00:00"}).encode())
        body = dumps(data).encode()
        ndjson.append(body + b"\n")
        sse.append(b"event:result\ndata:" + body + b"\nid:" + str(i).encode() + b"\n\n")
    return {"ws": ws, "ndjson": b"".join(ndjson), "sse": b"".join(sse),
            "dicts": [json.loads(p)["data"] for p in ws[: min(count, 1000)]],
            "bytes": sum(len(p) for p in ws)}


def _chunks(body: bytes) -> list[bytes]:
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def cases(payloads: dict[str, Any]) -> dict[str, tuple[Callable[[], int], int]]:
    """name -> (function returning the events it made, bytes it processes)."""
    from riptide_sync.models import StreamingResult
    from riptide_sync.protocol.envelope import decode_message
    from riptide_sync.protocol.ndjson import NDJSONDecoder, classify_line
    from riptide_sync.protocol.sse import SSEDecoder, sse_to_event

    ws = payloads["ws"]
    ndjson_chunks = _chunks(payloads["ndjson"])
    sse_chunks = _chunks(payloads["sse"])
    dicts = payloads["dicts"]

    def ws_decode() -> int:
        n = 0
        for payload in ws:
            if decode_message(payload).event_type == "result":
                n += 1
        return n

    def ndjson_decode() -> int:
        decoder = NDJSONDecoder()
        n = 0
        for chunk in ndjson_chunks:
            for line in decoder.feed(chunk):
                if classify_line(line).event_type == "result":
                    n += 1
        return n

    def sse_decode() -> int:
        decoder = SSEDecoder()
        n = 0
        for chunk in sse_chunks:
            for sse in decoder.feed(chunk):
                if sse_to_event(sse).event_type == "result":
                    n += 1
        return n

    def loads_only() -> int:
        loads = json.loads
        for payload in ws:
            loads(payload)
        return len(ws)

    def construct() -> int:
        for data in dicts:
            StreamingResult("result", data, None)
        return len(dicts)

    def typed() -> int:
        for data in dicts:
            StreamingResult("result", data, None).result  # noqa: B018 - builds the model
        return len(dicts)

    total = payloads["bytes"]
    return {
        "json.loads only": (loads_only, total),
        "ws decode_message": (ws_decode, total),
        "ndjson feed+classify": (ndjson_decode, len(payloads["ndjson"])),
        "sse feed+to_event": (sse_decode, len(payloads["sse"])),
        "StreamingResult()": (construct, 0),
        ".result (typed)": (typed, 0),
    }


def run_core(count: int = 20_000, sizes: tuple[int, ...] = (200, 4096, 65536),
             rounds: int = 5, budget: float | None = None) -> list[dict[str, Any]]:
    """Time every case for every size; rounds interleave the cases. Returns rows of
    ``{"case", "doc_size", "events_per_s", "mb_per_s", "us_per_event", "runs"}``.

    ``count`` is capped per size so that one pass holds at most ~64 MB of messages.
    """
    rows: list[dict[str, Any]] = []
    for size in sizes:
        n = max(10, min(count, (64 << 20) // (size + 600)))
        payloads = build_payloads(n, size)
        table = cases(payloads)
        for fn, _ in table.values():  # warm-up, and check each case sees every event
            made = fn()
            assert made in (n, len(payloads["dicts"])), (fn, made)
        times: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(rounds):
            for name, (fn, _) in table.items():
                started = time.perf_counter()
                events = fn()
                times[name].append((time.perf_counter() - started) / events)
        for name, (_, nbytes) in table.items():
            per_event = statistics.median(times[name])
            rows.append({
                "case": name, "doc_size": size, "events": n,
                "events_per_s": 1.0 / per_event,
                "mb_per_s": (nbytes / n) / per_event / 1e6 if nbytes else None,
                "us_per_event": per_event * 1e6,
                "spread_us": [min(times[name]) * 1e6, max(times[name]) * 1e6],
            })
    return rows


def format_core(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'case':<22} {'doc':>6} {'events/s':>11} {'MB/s':>8} {'us/event':>9} "
             f"{'spread us':>15}"]
    for row in rows:
        mb = f"{row['mb_per_s']:.0f}" if row["mb_per_s"] else "-"
        lo, hi = row["spread_us"]
        lines.append(f"{row['case']:<22} {row['doc_size']:>6} {row['events_per_s']:>11,.0f} "
                     f"{mb:>8} {row['us_per_event']:>9.2f} {lo:>7.2f}-{hi:<7.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_core(run_core()))
