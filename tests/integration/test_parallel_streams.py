"""A parallel stream is read by the consumer itself: each connection's reader thread
(WebSocket: the connection's own; NDJSON/SSE: a read-ahead thread per response, which only
reads) queues what it read and wakes the consumer, which takes the next event of whichever
request has one and decodes it (no pump thread, no second hand-off per event). Exactly-once
and every per-request deadline still hold.
"""

from __future__ import annotations

import threading
import time

import pytest

from riptide_sync import RetryPolicy, RipTideClient
from support.leaks import still_there, threads_since

pytest.importorskip("aiohttp")
pytestmark = pytest.mark.usefixtures("lanes_at_once")  # two lanes on the fast local server


def _urls(n: int) -> list[str]:
    return [f"https://example.org/page/{i}" for i in range(n)]


@pytest.mark.parametrize("transport", ["websocket", "ndjson", "sse"])
def test_parallel_stream_starts_no_pump_thread(make_server, transport: str) -> None:
    """1,000 URLs in 10 chunks on 2 connections: every index once, and no pump thread at
    any point (before: one pump per chunk); the readers are the transports' own."""
    running = make_server(synthetic_doc_size=200)
    seen_threads: set[str] = set()
    before = set(threading.enumerate())
    with RipTideClient(running.base_url, parallel=2) as client:
        indices = []
        for event in getattr(client.streaming, f"crawl_{transport}")(_urls(1000)):
            if event.event_type == "result":
                indices.append(event.data["index"])
                if len(indices) % 50 == 0:
                    seen_threads.update(t.name for t in threading.enumerate())
    assert sorted(indices) == list(range(1000))
    if transport == "websocket":
        assert running.counters.ws_accepted == 2
    reader = "riptide-ws-reader" if transport == "websocket" else "riptide-http-reader"
    assert reader in seen_threads
    assert not any(name.startswith("riptide-stream-pump") for name in seen_threads)
    assert not still_there(lambda: threads_since(before), within=2)  # close() left no thread behind


def test_a_frozen_connection_beside_a_busy_one_times_out_and_resumes(make_server) -> None:
    """The first connection freezes after 30 results while the second streams on: the
    consumer, busy with the second, still ends the frozen request at its deadline and
    resumes its missing URLs; every URL is delivered once."""
    from riptide_sync.server import Faults

    running = make_server(synthetic_doc_size=200, faults=Faults(freeze_after=30, send_delay=0.001))
    started = time.monotonic()
    with RipTideClient(running.base_url, parallel=2,
                       retry=RetryPolicy(max_attempts=5, initial_backoff=0.0, jitter=0.0)) as client:
        stream = client.streaming.crawl_websocket(_urls(2000), progress_timeout=1.0)
        indices = [e.data["index"] for e in stream if e.event_type == "result"]
        reconnects = stream.stats.reconnects
    assert sorted(indices) == list(range(2000))
    assert reconnects >= 1
    # The frozen request's URLs came back while the other connection was still streaming
    # (about 1 ms a result, 2 s in all), not after it ran out of work.
    assert indices.index(99) < indices.index(1999)
    assert time.monotonic() - started < 20
