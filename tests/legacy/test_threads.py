"""Thread safety: one client shared by many threads (the stated contract, README "Thread
safety"): the client and its connection pool may be shared; a stream has one consumer,
and ``close()`` may come from any thread.

Before the pool was sized for it, 8 threads streaming at once through one client (32
connections in use) were correct but urllib3 logged "Connection pool is full, discarding
connection" dozens of times: its default pool keeps 10 connections per host.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import pytest

from riptide_sync import RipTideClient, StreamConnectionError
from riptide_sync.server.demo_site import page_url
from support.leaks import still_there, threads_since

pytestmark = pytest.mark.usefixtures("lanes_at_once")  # NDJSON/SSE lanes open at once on the fast local server

THREADS = 8
URLS_PER_THREAD = 100


def _pool_full(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]


@pytest.mark.parametrize("transport", ["ndjson", "sse", "websocket"])
def test_eight_threads_stream_through_one_client_at_once(server_process, caplog, transport):
    """8 threads x 4 parallel requests each = 32 connections at once: 0 lost, 0
    duplicated, no "pool is full", no thread left behind."""
    caplog.set_level(logging.WARNING, logger="urllib3")
    before = set(threading.enumerate())
    client = RipTideClient(server_process.base_url, parallel=4, max_urls_per_request=25,
                           timeout=20)
    barrier = threading.Barrier(THREADS)

    def consume(n: int) -> list[str]:
        urls = server_process.urls(URLS_PER_THREAD, tag=f"t{n}")
        barrier.wait(10)
        with getattr(client.streaming, f"crawl_{transport}")(urls) as stream:
            got = [e.result.url for e in stream if e.event_type == "result"]
        assert sorted(got) == sorted(urls), f"thread {n}: {len(got)} results, {len(set(got))} unique"
        return got

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(consume, range(THREADS)))
    client.close()
    assert sum(len(r) for r in results) == THREADS * URLS_PER_THREAD
    assert _pool_full(caplog) == []
    assert still_there(lambda: threads_since(before), within=5) == set()


def test_a_thread_pool_fans_batch_crawls_out_over_one_client(server_process, caplog):
    """32 workers, 64 batch crawls on one client: every response is its own request's."""
    caplog.set_level(logging.WARNING, logger="urllib3")
    with RipTideClient(server_process.base_url, timeout=20) as client:

        def job(n: int) -> bool:
            urls = server_process.urls(10, tag=f"job{n}")
            return [r.url for r in client.crawl(urls).results] == urls

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            assert all(pool.map(job, range(64)))
    assert _pool_full(caplog) == []


def test_close_from_another_thread_ends_a_blocked_consumer_within_a_second(make_server):
    """The stream's consumer is blocked waiting for a slow page; close() from another
    thread ends its iteration at once."""
    server = make_server()
    client = RipTideClient(server.base_url, retry=None)
    slow = page_url("slow")  # the demo site, served by the server itself
    for transport in ("websocket", "ndjson", "sse"):
        stream = getattr(client.streaming, f"crawl_{transport}")([slow], {"cache_mode": "bypass"})
        outcome: list[object] = []

        def consume() -> None:
            try:
                outcome.append([e.event_type for e in stream])
            except StreamConnectionError as exc:
                outcome.append(exc)

        consumer = threading.Thread(target=consume)
        consumer.start()
        time.sleep(0.3)  # the consumer is now waiting for the slow page's result
        started = time.monotonic()
        stream.close()
        consumer.join(2)
        assert not consumer.is_alive(), transport
        assert time.monotonic() - started < 1.0, transport
        assert outcome and (not isinstance(outcome[0], list) or "result" not in outcome[0]), outcome
    client.close()
