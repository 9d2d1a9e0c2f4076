"""Never lose a URL (issue 5): every fault scenario of the local server, on every transport.

Each test asserts the exact multiset of indices delivered, what the server was asked on
each request (its request log), and that nothing is left running.
"""

from __future__ import annotations

import collections
import time

import pytest

from riptide_sync import IncompleteStreamError, RateLimitError, RetryPolicy, RipTideClient
from riptide_sync.server import Faults
from support.leaks import still_there, threads_named

TRANSPORTS = {"ws": "crawl_websocket", "ndjson": "crawl_ndjson", "sse": "crawl_sse"}
SYNTHETIC = 256  # bytes of document text per synthetic result


def synthetic_urls(count, prefix="page"):
    return [f"https://synthetic.example/{prefix}/{i}" for i in range(count)]


@pytest.fixture(autouse=True)
def no_threads_left_behind():
    """Every test ends with no stream thread still running."""
    yield
    left = still_there(lambda: threads_named(prefix="riptide-ws"), within=1.0)
    if left:
        pytest.fail(f"threads left running: {left}")


def crawl(server, transport, urls, *, sleeps=None, client_kwargs=None, **kwargs):
    """Crawl through ``transport``; return (events, client stream stats)."""
    recorded = sleeps if sleeps is not None else []
    policy = RetryPolicy(max_attempts=kwargs.pop("max_attempts", 4), initial_backoff=0.05,
                         jitter=0.0, sleep=recorded.append)
    with RipTideClient(server.base_url, retry=policy, **(client_kwargs or {})) as client:
        stream = getattr(client.streaming, TRANSPORTS[transport])(urls, **kwargs)
        with stream:
            events = list(stream)
        return events, stream.stats


def indices(events):
    return collections.Counter(e.data["index"] for e in events if e.event_type == "result")


def requests_of(server, transport):
    return [entry for entry in server.request_log if entry.transport == transport and entry.accepted]


def assert_complete(events, total):
    """Each index once, one metadata, then exactly one summary covering the list, last."""
    assert indices(events) == collections.Counter(range(total))
    kinds = [e.event_type for e in events]
    assert kinds.count("summary") == 1 and kinds[-1] == "summary"
    assert kinds.count("metadata") == 1 and kinds.count("welcome") <= 1
    summary = events[-1].data
    assert summary["total_urls"] == total
    assert summary["successful"] + summary["failed"] == total


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_drop_after_n_results(make_server, transport):
    """A connection dropped after 3 results: the second request holds only the missing URLs."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(drop_after=3))
    urls = synthetic_urls(12)
    events, stats = crawl(server, transport, urls)
    assert_complete(events, 12)
    log = requests_of(server, transport)
    assert len(log) == 2
    delivered_first = 12 - len(log[1].urls)
    assert delivered_first == 3
    first_indices = [e.data["index"] for e in events if e.event_type == "result"][:3]
    assert sorted(log[1].urls) == sorted(u for i, u in enumerate(urls) if i not in first_indices)
    assert stats.reconnects == 1 and stats.resumed_urls == 9


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_server_silently_dropped_results(make_server, transport):
    """Results the server never sent (its summary says so) are asked for again."""
    urls = synthetic_urls(8)
    dropped = {urls[2], urls[5]}
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(drop_results_for=frozenset(dropped)))
    events, _ = crawl(server, transport, urls)
    assert_complete(events, 8)
    log = requests_of(server, transport)
    assert [sorted(entry.urls) for entry in log] == [sorted(urls), sorted(dropped)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_lost_summary_ends_with_own_summary(make_server, transport):
    """Every result in but the summary lost: one request, and a summary still ends the stream."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(drop_summary_first=1))
    urls = synthetic_urls(5)
    started = time.monotonic()
    events, _ = crawl(server, transport, urls, progress_timeout=2.0)
    assert_complete(events, 5)
    assert len(requests_of(server, transport)) == 1
    assert time.monotonic() - started < 4.0


def test_resume_ndjson_body_cut_mid_line(make_server):
    """An NDJSON body ending mid-line without a summary is resumed, never a silent success."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(cut_ndjson_after=4))
    urls = synthetic_urls(10)
    events, stats = crawl(server, "ndjson", urls)
    assert_complete(events, 10)
    log = requests_of(server, "ndjson")
    assert len(log) == 2 and len(log[1].urls) == 7  # metadata + 3 results were complete lines
    assert stats.reconnects == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_429_honours_retry_after(make_server, transport):
    """A 429 with Retry-After 2 on opening: the client waits 2 s (recorded), then streams."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(reject_first=1, retry_after=2))
    sleeps = []
    events, _ = crawl(server, transport, synthetic_urls(3), sleeps=sleeps)
    assert_complete(events, 3)
    assert sleeps == [2.0]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_freeze_with_tcp_open(make_server, transport):
    """A server that stops sending with TCP open is caught by the progress deadline and resumed."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(freeze_after=2))
    urls = synthetic_urls(6)
    started = time.monotonic()
    events, _ = crawl(server, transport, urls, progress_timeout=0.5)
    assert_complete(events, 6)
    assert len(requests_of(server, transport)) == 2
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chunking_250_urls_over_limit_of_100(make_server, transport):
    """250 URLs against a limit of 100, in sequence: requests of 100, 100, 50; one stream."""
    server = make_server(synthetic_doc_size=SYNTHETIC)
    events, _ = crawl(server, transport, synthetic_urls(250), parallel=1)
    assert_complete(events, 250)
    assert [len(entry.urls) for entry in requests_of(server, transport)] == [100, 100, 50]
    if transport == "ws":  # sequential crawls on one socket
        assert len({entry.connection for entry in requests_of(server, "ws")}) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chunking_parallel_connections(make_server, transport, lanes_at_once):
    """250 URLs with parallel=3: three requests at once on three connections, one stream."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(send_delay=0.002))
    events, _ = crawl(server, transport, synthetic_urls(250), parallel=3)
    assert_complete(events, 250)
    log = requests_of(server, transport)
    assert sorted(len(entry.urls) for entry in log) == [50, 100, 100]
    assert len({entry.connection for entry in log}) == 3
    # The three requests overlapped: results of several chunks interleave in the stream.
    chunks = [e.data["index"] // 100 for e in events if e.event_type == "result"]
    switches = sum(1 for a, b in zip(chunks, chunks[1:]) if a != b)
    assert switches > 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_duplicate_urls_each_position_gets_its_result(make_server, transport):
    """A URL listed twice is crawled twice: each position has its own result."""
    server = make_server(synthetic_doc_size=SYNTHETIC)
    urls = synthetic_urls(3)
    urls = [urls[0], urls[1], urls[0], urls[2], urls[0]]
    events, _ = crawl(server, transport, urls)
    assert_complete(events, 5)
    by_index = {e.data["index"]: e.data["result"]["url"] for e in events if e.event_type == "result"}
    assert [by_index[i] for i in range(5)] == urls


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_retries_exhausted_names_missing_urls(make_server, transport):
    """A server that keeps refusing: IncompleteStreamError names every URL, chained to the 429."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(reject_first=100, retry_after=1))
    urls = synthetic_urls(4)
    sleeps = []
    with pytest.raises(IncompleteStreamError) as info:
        crawl(server, transport, urls, sleeps=sleeps, max_attempts=3)
    assert info.value.missing == urls and info.value.delivered == 0
    assert isinstance(info.value.__cause__, RateLimitError)
    assert len(sleeps) == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_thousand_urls_through_drop_every_150(make_server, transport):
    """1,000 URLs, the server dropping every connection after 150 results: each once, one summary.

    HTTP requests carry at most 100 URLs, so there the server drops every 40 results."""
    every = 150 if transport == "ws" else 40
    server = make_server(synthetic_doc_size=64, faults=Faults(drop_every=every))
    events, stats = crawl(server, transport, synthetic_urls(1000))
    assert_complete(events, 1000)
    # Each connection carries at most `every` results, so 1,000 need at least 7 WebSocket
    # connections (25 HTTP requests); the first two (parallel=2) are no reconnect, and a
    # drop that falls on a request's end resumes nothing: at least 4 (WS) are resumes.
    assert stats.reconnects >= (4 if transport == "ws" else 6)
    assert stats.results == 1000


def test_default_policy_needs_no_hand_written_retry_loop(make_server):
    """The client's default policy alone survives a drop (no retry loop in user code)."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(drop_after=2))
    with RipTideClient(server.base_url) as client:
        events = list(client.streaming.crawl_websocket(synthetic_urls(5)))
    assert_complete(events, 5)


def test_checkpoint_second_run_skips_recorded(make_server, tmp_path):
    """A run that failed part-way leaves a checkpoint; the next run asks only for the rest."""
    path = tmp_path / "crawl.jsonl"
    urls = synthetic_urls(6)
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(drop_after=2))
    with pytest.raises(IncompleteStreamError):
        crawl(server, "ws", urls, max_attempts=1, checkpoint=path)
    events, _ = crawl(server, "ws", urls, checkpoint=path)
    assert len(indices(events)) == 4
    assert len(requests_of(server, "ws")[-1].urls) == 4
    assert events[-1].data["successful"] == 6


@pytest.mark.parametrize("transport", ["ws", "ndjson"])
def test_lost_summary_in_parallel_costs_only_the_grace(make_server, transport):
    """With parallel chunks, a lost summary still costs the summary grace, not the
    progress deadline (the pump counts its own results)."""
    server = make_server(synthetic_doc_size=SYNTHETIC, faults=Faults(drop_summary_first=1))
    started = time.monotonic()
    events, _ = crawl(server, transport, synthetic_urls(150), parallel=2, progress_timeout=30.0)
    assert_complete(events, 150)
    assert time.monotonic() - started < 15.0


def test_refused_chunk_raises_naming_missing(make_server):
    """A chunk the server refuses ends the stream with IncompleteStreamError naming its
    URLs (and those cut short), chained to the server's validation error."""
    from riptide_sync import APIError

    server = make_server(synthetic_doc_size=SYNTHETIC, allow_private=False)
    urls = synthetic_urls(150)
    urls[120] = "http://10.0.0.1/private"  # valid to the client, refused by the server (§6.1)
    with pytest.raises(IncompleteStreamError) as info:
        crawl(server, "ws", urls, parallel=1)
    assert info.value.delivered == 100
    assert info.value.missing == urls[100:]
    assert isinstance(info.value.__cause__, APIError)
    assert info.value.__cause__.error_type == "validation_error"
