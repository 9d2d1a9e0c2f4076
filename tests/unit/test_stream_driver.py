"""CrawlStream, the driver every transport plugs into, run on a scripted Transport.

The scripted transport is a real implementation of the ``Transport`` seam (it replays
events per request), not a mock: the driver's bookkeeping is what is under test here.
Transports themselves are tested over real sockets elsewhere.
"""

from __future__ import annotations

import gc
import logging
import json
import queue
import threading
import time

import pytest

from riptide_sync import CrawlStream, RetryPolicy, StreamStats, StreamingResult
from riptide_sync.exceptions import (
    APIError,
    AuthenticationError,
    IncompleteStreamError,
    RateLimitError,
    StreamConnectionError,
    StreamTimeoutError,
)
from support.leaks import threads_named


def ev(kind, **data):
    return StreamingResult(kind, data)


def res(index, url, error=None):
    return ev("result", index=index, result={"url": url, "error": error}, progress={})


class ScriptedTransport:
    """Answers the n-th open_crawl with the n-th script (events or exceptions to raise)."""

    name = "scripted"

    def __init__(self, *scripts, block_at_end=False):
        self.scripts = list(scripts)
        self.requests: list[list[str]] = []
        self.session_id = None
        self.closed = threading.Event()
        self.block_at_end = block_at_end
        self.sources_closed = 0

    def open_crawl(self, urls, options):
        self.requests.append(list(urls))
        script = self.scripts[len(self.requests) - 1]
        if isinstance(script, BaseException):
            raise script  # the request itself fails (connect refused, 429, 401...)
        items = queue.SimpleQueue()
        for item in script(urls) if callable(script) else script:
            items.put(item)
        transport = self

        class Source:
            def receive(self, timeout):
                while True:
                    if transport.closed.is_set():
                        raise StreamConnectionError("stream closed")
                    try:
                        item = items.get(timeout=0.01)
                    except queue.Empty:
                        if transport.block_at_end:
                            continue
                        raise StreamConnectionError("connection lost") from None
                    if isinstance(item, BaseException):
                        raise item
                    return item

            def close(self):
                transport.sources_closed += 1

        return Source()

    def close(self):
        self.closed.set()


def make(transport, urls, **kw):
    kw.setdefault("progress_timeout", 1.0)
    return CrawlStream(lambda: transport, list(urls), None, stats=StreamStats(), **kw)


def whole(urls, *, welcome=True, order=None):
    """A clean request: welcome, metadata, results in ``order``, summary."""

    def script(sent):
        events = [ev("welcome", session_id="s1")] if welcome else []
        events.append(ev("metadata", total_urls=len(sent), stream_type="crawl"))
        for i in order or range(len(sent)):
            events.append(res(i, sent[i]))
        events.append(ev("summary", total_urls=len(sent), successful=len(sent), failed=0))
        return events

    return script


def test_stream_clean_crawl_yields_each_url_once_then_summary():
    """welcome, metadata, one result per URL (caller indices), one summary, then closed."""
    urls = ["u0", "u1", "u2"]
    transport = ScriptedTransport(whole(urls, order=[2, 0, 1]))
    events = list(make(transport, urls))
    assert [e.event_type for e in events] == ["welcome", "metadata", "result", "result", "result", "summary"]
    assert [e.data["index"] for e in events if e.event_type == "result"] == [2, 0, 1]
    assert events[-1].data == {"total_urls": 3, "successful": 3, "failed": 0}
    assert transport.closed.is_set()


def test_stream_chunks_long_lists_into_one_logical_stream():
    """250 URLs at 100 per request: 3 requests, one metadata, indices over the whole list."""
    urls = [f"u{i}" for i in range(250)]
    transport = ScriptedTransport(whole(urls), whole(urls, welcome=False), whole(urls, welcome=False))
    stream = make(transport, urls, max_urls_per_request=100)
    events = list(stream)
    assert [len(r) for r in transport.requests] == [100, 100, 50]
    kinds = [e.event_type for e in events]
    assert kinds.count("metadata") == 1 and kinds.count("welcome") == 1
    assert events[1].data["total_urls"] == 250
    indices = sorted(e.data["index"] for e in events if e.event_type == "result")
    assert indices == list(range(250))
    assert events[-1].event_type == "summary"
    assert events[-1].data["total_urls"] == 250 and events[-1].data["successful"] == 250
    assert stream.stats.results == 250


def test_stream_late_duplicate_is_not_yielded_twice():
    """A second result for the same index is counted, not delivered."""
    urls = ["a", "b"]
    script = [ev("metadata"), res(0, "a"), res(0, "a"), res(1, "b"),
              ev("summary", total_urls=2, successful=2, failed=0)]
    stream = make(ScriptedTransport(script), urls)
    results = [e for e in stream if e.event_type == "result"]
    assert [e.data["index"] for e in results] == [0, 1]
    assert stream.stats.duplicates_suppressed == 1


def test_stream_error_answering_request_ends_stream():
    """A validation error instead of metadata is yielded, then the stream ends (§1.4) by
    raising IncompleteStreamError: no URL is lost silently."""
    transport = ScriptedTransport([ev("welcome"), ev("error", error_type="validation_error",
                                                     message="Validation error: x")])
    stream = make(transport, ["a"])
    seen = []
    with pytest.raises(IncompleteStreamError) as info:
        for event in stream:
            seen.append(event.event_type)
    assert seen == ["welcome", "error"]
    assert info.value.missing == ["a"]
    assert isinstance(info.value.__cause__, APIError)
    assert info.value.__cause__.error_type == "validation_error"
    assert transport.closed.is_set()


def test_stream_refused_later_chunk_names_every_missing_url():
    """The second chunk refused (e.g. a URL the server rejects): the first chunk's results
    were delivered, the rest are named missing, and nothing is retried."""
    urls = [f"u{i}" for i in range(150)]
    refused = [ev("error", error_type="validation_error", message="Invalid URL: u120")]
    sleeps = []
    transport = ScriptedTransport(whole(urls), refused)
    stream = make(transport, urls, max_urls_per_request=100, retry=policy(sleeps))
    with pytest.raises(IncompleteStreamError) as info:
        list(stream)
    assert info.value.delivered == 100
    assert info.value.missing == urls[100:]
    assert len(transport.requests) == 2 and sleeps == []


def test_stream_errors_after_metadata_are_yielded_and_streaming_goes_on():
    """A malformed frame or a later error is an event; results still arrive."""
    script = [ev("metadata"), ev("error", error_type="malformed_message", message="bad"),
              res(0, "a"), ev("summary", total_urls=1, successful=1, failed=0)]
    kinds = [e.event_type for e in make(ScriptedTransport(script), ["a"])]
    assert kinds == ["metadata", "error", "result", "summary"]


def test_stream_malformed_frame_before_metadata_does_not_end_stream():
    """An unreadable frame is not the server refusing the crawl."""
    script = [ev("error", error_type="malformed_message", message="bad"), ev("metadata"),
              res(0, "a"), ev("summary", total_urls=1, successful=1, failed=0)]
    kinds = [e.event_type for e in make(ScriptedTransport(script), ["a"])]
    assert kinds == ["error", "metadata", "result", "summary"]


def test_stream_result_outside_request_becomes_error_event():
    """A result index the request does not have is reported, not trusted."""
    script = [ev("metadata"), res(7, "zz"), res(0, "a"),
              ev("summary", total_urls=1, successful=1, failed=0)]
    events = list(make(ScriptedTransport(script), ["a"]))
    assert events[1].event_type == "error" and events[1].data["error_type"] == "invalid_result"
    assert events[-1].event_type == "summary"


def test_stream_lost_connection_raises_incomplete_naming_missing():
    """EOF before the summary raises IncompleteStreamError with the missing URLs, chained."""
    script = [ev("metadata"), res(1, "b")]
    stream = make(ScriptedTransport(script), ["a", "b", "c"])
    seen = []
    with pytest.raises(IncompleteStreamError) as info:
        for event in stream:
            seen.append(event)
    assert info.value.missing == ["a", "c"]
    assert info.value.missing_indices == [0, 2]
    assert info.value.delivered == 1
    assert isinstance(info.value.__cause__, StreamConnectionError)
    assert stream.closed


def test_stream_summary_short_of_results_raises_incomplete():
    """A summary with results missing (server-side drops) is not a silent success."""
    script = [ev("metadata"), res(0, "a"), ev("summary", total_urls=2, successful=1, failed=0)]
    with pytest.raises(IncompleteStreamError) as info:
        list(make(ScriptedTransport(script), ["a", "b"]))
    assert info.value.missing == ["b"]


def test_stream_on_message_runs_before_yield_in_order():
    """on_message sees every event, in order, before the loop body does."""
    seen = []
    stream = make(ScriptedTransport(whole(["a", "b"])), ["a", "b"], on_message=lambda e: seen.append(e.event_type))
    for event in stream:
        assert seen[-1] == event.event_type
    assert seen == ["welcome", "metadata", "result", "result", "summary"]


def test_stream_on_message_exception_propagates_and_closes():
    """An exception in on_message reaches the caller and closes the stream."""
    transport = ScriptedTransport(whole(["a"]))

    def boom(event):
        if event.event_type == "metadata":
            raise RuntimeError("callback failed")

    stream = make(transport, ["a"], on_message=boom)
    with pytest.raises(RuntimeError, match="callback failed"):
        list(stream)
    assert transport.closed.is_set() and stream.closed


def test_stream_close_from_other_thread_ends_iteration_quietly():
    """close() from another thread wakes the blocked consumer; iteration just ends."""
    transport = ScriptedTransport([ev("metadata")], block_at_end=True)
    stream = make(transport, ["a"])
    assert next(stream).event_type == "metadata"
    timer = threading.Timer(0.1, stream.close)
    timer.start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 1.0
    timer.join()


def test_stream_break_and_drop_closes_transport():
    """Leaving a for loop and dropping the stream closes it at once (no cycle keeps it)."""
    transport = ScriptedTransport(whole(["a", "b"]), block_at_end=True)
    gc.disable()
    try:
        for event in make(transport, ["a", "b"]):
            if event.event_type == "metadata":
                break
        assert transport.closed.is_set()
    finally:
        gc.enable()


def test_stream_context_manager_closes():
    """Leaving a with block closes the stream, even mid-iteration."""
    transport = ScriptedTransport(whole(["a"]))
    with make(transport, ["a"]) as stream:
        next(stream)
    assert transport.closed.is_set()
    stream.close()  # idempotent


def test_stream_nothing_sent_before_first_next():
    """Creating a stream sends nothing; the first next() opens the request."""
    transport = ScriptedTransport(whole(["a"]))
    stream = make(transport, ["a"])
    assert transport.requests == []
    next(stream)
    assert transport.requests == [["a"]]
    stream.close()


def test_stream_timeout_from_source_is_incomplete_with_cause():
    """A receive deadline passing surfaces as IncompleteStreamError caused by the timeout."""
    script = [ev("metadata"), StreamTimeoutError("no event for 5 s")]
    with pytest.raises(IncompleteStreamError) as info:
        list(make(ScriptedTransport(script), ["a"]))
    assert isinstance(info.value.__cause__, StreamTimeoutError)


def test_stream_keyboard_interrupt_closes_and_propagates():
    """Ctrl-C inside receive() closes the stream and reaches the caller."""
    transport = ScriptedTransport([ev("metadata"), KeyboardInterrupt()])
    stream = make(transport, ["a"])
    with pytest.raises(KeyboardInterrupt):
        list(stream)
    assert transport.closed.is_set()


def test_stream_unknown_event_types_pass_through():
    """A type the server added later reaches the caller unchanged."""
    script = [ev("metadata"), ev("heartbeat", n=1), res(0, "a"),
              ev("summary", total_urls=1, successful=1, failed=0)]
    kinds = [e.event_type for e in make(ScriptedTransport(script), ["a"])]
    assert kinds == ["metadata", "heartbeat", "result", "summary"]


# --- resume, retries, deadlines (issue 5) -------------------------------------------------


def policy(sleeps, **kw):
    kw.setdefault("jitter", 0.0)
    kw.setdefault("initial_backoff", 0.1)
    return RetryPolicy(sleep=sleeps.append, **kw)


def partial(indices, *, welcome=True, metadata=True, summary=False, then=None):
    """A request that delivers only ``indices`` (request-relative), then ends as told."""

    def script(sent):
        events = [ev("welcome")] if welcome else []
        if metadata:
            events.append(ev("metadata", total_urls=len(sent)))
        events += [res(i, sent[i]) for i in indices]
        if summary:
            events.append(ev("summary", total_urls=len(sent), successful=len(indices), failed=0))
        if then is not None:
            events.append(then)
        return events

    return script


def result_indices(events):
    return [e.data["index"] for e in events if e.event_type == "result"]


def test_resume_after_drop_requests_only_missing():
    """A connection lost after 2 of 5 results: the second request holds the 3 missing."""
    urls = [f"u{i}" for i in range(5)]
    sleeps = []
    transport = ScriptedTransport(partial([3, 0]), whole(urls))
    stream = make(transport, urls, retry=policy(sleeps))
    events = list(stream)
    assert transport.requests[1] == ["u1", "u2", "u4"]
    assert sorted(result_indices(events)) == [0, 1, 2, 3, 4]
    assert len(result_indices(events)) == 5
    kinds = [e.event_type for e in events]
    assert kinds.count("welcome") == 1 and kinds.count("metadata") == 1
    assert kinds[-1] == "summary" and kinds.count("summary") == 1
    assert events[-1].data["total_urls"] == 5 and events[-1].data["successful"] == 5
    assert sleeps == []  # results came before the drop: resumed at once
    assert stream.stats.reconnects == 1 and stream.stats.resumed_urls == 3
    assert transport.sources_closed >= 1


def test_resume_progress_counts_against_callers_total():
    """After a resume, progress keeps counting over the whole list."""
    urls = ["a", "b", "c"]
    transport = ScriptedTransport(partial([0]), whole(urls))
    events = [e for e in make(transport, urls, retry=policy([])) if e.event_type == "result"]
    assert [e.data["progress"]["completed"] for e in events] == [1, 2, 3]
    assert all(e.data["progress"]["total"] == 3 for e in events)


def test_resume_after_summary_short_of_results():
    """Server-side drops (summary with results missing) trigger a resume of just those."""
    urls = ["a", "b", "c"]
    transport = ScriptedTransport(partial([0, 2], summary=True), whole(urls))
    events = list(make(transport, urls, retry=policy([])))
    assert transport.requests[1] == ["b"]
    assert sorted(result_indices(events)) == [0, 1, 2]


def test_lost_summary_with_every_result_in_is_not_resumed():
    """Only the summary lost: no second request, our own summary ends the stream."""
    urls = ["a", "b"]
    transport = ScriptedTransport(partial([0, 1]))
    events = list(make(transport, urls, retry=policy([])))
    assert len(transport.requests) == 1
    assert events[-1].event_type == "summary"
    assert events[-1].data["successful"] == 2 and events[-1].data["total_urls"] == 2


def test_lost_summary_waits_only_the_grace():
    """A summary that never comes after the last result costs at most the summary grace."""
    urls = ["a"]
    transport = ScriptedTransport(partial([0]), block_at_end=True)
    stream = make(transport, urls, retry=policy([]), progress_timeout=0.3)

    started = time.monotonic()
    # The scripted source honours no timeout itself: emulate a transport deadline.
    class DeadlineSource:
        def __init__(self, inner):
            self.inner = inner
        def receive(self, timeout):
            deadline = time.monotonic() + (timeout or 10)
            while time.monotonic() < deadline:
                try:
                    return self.inner.receive(0.01)
                except StreamConnectionError:
                    if transport.closed.is_set():
                        raise
            raise StreamTimeoutError(f"no event for {timeout} s")
        def close(self):
            self.inner.close()

    original_open = transport.open_crawl
    transport.open_crawl = lambda urls, options: DeadlineSource(original_open(urls, options))
    transport.block_at_end = False
    events = list(stream)
    assert events[-1].event_type == "summary"
    assert time.monotonic() - started < 1.0


def test_stall_is_resumed_by_progress_deadline():
    """No event for progress_timeout: the request is abandoned and the missing URLs asked again."""
    urls = ["a", "b"]
    transport = ScriptedTransport(partial([0], then=StreamTimeoutError("no event for 1 s")), whole(urls))
    events = list(make(transport, urls, retry=policy([])))
    assert transport.requests[1] == ["b"]
    assert sorted(result_indices(events)) == [0, 1]


def test_open_failure_retried_with_retry_after():
    """A 429 with Retry-After 3 on opening: wait 3 s (recorded), then stream."""
    sleeps = []
    urls = ["a"]
    transport = ScriptedTransport(RateLimitError("slow", status_code=429, retry_after=3.0), whole(urls))
    events = list(make(transport, urls, retry=policy(sleeps)))
    assert sleeps == [3.0]
    assert events[-1].event_type == "summary"


def test_open_auth_failure_raised_as_is_without_retry():
    """401 on opening is raised as AuthenticationError at once, never retried."""
    sleeps = []
    transport = ScriptedTransport(AuthenticationError("no key", status_code=401))
    with pytest.raises(AuthenticationError):
        list(make(transport, ["a"], retry=policy(sleeps)))
    assert sleeps == [] and len(transport.requests) == 1


def test_retries_exhausted_raise_incomplete_with_missing_and_cause():
    """Every attempt dropping without progress: IncompleteStreamError names what is missing."""
    urls = ["a", "b", "c"]
    sleeps = []
    transport = ScriptedTransport(partial([0]), partial([], welcome=False), partial([], welcome=False))
    stream = make(transport, urls, retry=policy(sleeps, max_attempts=3))
    delivered = []
    with pytest.raises(IncompleteStreamError) as info:
        for event in stream:
            delivered.append(event)
    assert info.value.missing == ["b", "c"] and info.value.missing_indices == [1, 2]
    assert info.value.delivered == 1
    assert isinstance(info.value.__cause__, StreamConnectionError)
    # The first attempt made progress (resumed at once); then the streak backs off.
    assert len(transport.requests) == 3 and sleeps == [0.2]
    assert transport.closed.is_set()


def test_progress_resets_failure_streak():
    """Drops every 2 results over 10 URLs complete with max_attempts=2: progress resets the streak."""
    urls = [f"u{i}" for i in range(10)]
    scripts = [partial([0, 1], welcome=(n == 0)) for n in range(5)]
    transport = ScriptedTransport(*scripts, whole(urls, welcome=False))
    events = list(make(transport, urls, retry=policy([], max_attempts=2)))
    assert sorted(result_indices(events)) == list(range(10))
    assert [len(r) for r in transport.requests[:5]] == [10, 8, 6, 4, 2]


def test_no_retry_policy_fails_on_first_drop():
    """retry=None (the default here): the first drop raises IncompleteStreamError."""
    transport = ScriptedTransport(partial([0]))
    with pytest.raises(IncompleteStreamError):
        list(make(transport, ["a", "b"]))
    assert len(transport.requests) == 1


def test_close_during_backoff_returns_promptly():
    """close() from another thread ends a long backoff wait at once."""
    # No progress on the failing attempt (no result), so the backoff applies.
    transport = ScriptedTransport(partial([]), whole(["a", "b"]))
    stream = make(transport, ["a", "b"], retry=RetryPolicy(initial_backoff=30.0, jitter=0.0))
    assert [next(stream).event_type for _ in range(2)] == ["welcome", "metadata"]
    timer = threading.Timer(0.1, stream.close)
    timer.start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 1.0
    timer.join()


def test_checkpoint_skips_done_urls_and_survives_torn_line(tmp_path):
    """A second run with the same checkpoint asks only for the URLs not recorded."""
    path = tmp_path / "crawl.jsonl"
    urls = ["a", "b", "c"]
    with pytest.raises(IncompleteStreamError):
        list(make(ScriptedTransport(partial([0, 2])), urls, checkpoint=path))
    with open(path, "a") as file:
        file.write('{"index": 1, "url": "b", "res')  # a crash mid-write
    transport = ScriptedTransport(whole(urls))
    events = list(make(transport, urls, checkpoint=path))
    assert transport.requests == [["b"]]
    assert result_indices(events) == [1]
    assert events[-1].data["successful"] == 3 and events[-1].data["total_urls"] == 3
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    assert sorted(entry["index"] for entry in lines) == [0, 1, 2]


def test_checkpoint_ignores_lines_for_other_urls(tmp_path):
    """A checkpoint from another URL list does not skip anything."""
    path = tmp_path / "crawl.jsonl"
    path.write_text('{"index": 0, "url": "other", "result": {}}\n')
    transport = ScriptedTransport(whole(["a"]))
    list(make(transport, ["a"], checkpoint=path))
    assert transport.requests == [["a"]]


# --- parallel connections for long lists --------------------------------------------------


class SharedScripts:
    """Scripts shared by every transport a parallel stream makes (one per connection)."""

    def __init__(self, *scripts, block_at_end=False):
        self.scripts = list(scripts)
        self.requests: list[list[str]] = []
        self.transports: list[ScriptedTransport] = []
        self.block_at_end = block_at_end
        self.lock = threading.Lock()

    def make(self):
        transport = ScriptedTransport(block_at_end=self.block_at_end)
        transport.scripts, transport.requests = self.scripts, self.requests
        original = transport.open_crawl

        def open_crawl(urls, options):
            with self.lock:  # the scripted request order is the order of opening
                return original(urls, options)

        transport.open_crawl = open_crawl
        self.transports.append(transport)
        return transport


def pumps_left():
    return threads_named("riptide-stream-pump")


def test_parallel_chunks_stream_at_once_as_one_logical_stream():
    """250 URLs, parallel=3: three connections, every index once, one metadata, one summary."""
    urls = [f"u{i}" for i in range(250)]
    shared = SharedScripts(whole(urls), whole(urls), whole(urls))
    stream = CrawlStream(shared.make, urls, None, stats=StreamStats(), parallel=3,
                         max_urls_per_request=100, progress_timeout=1.0)
    events = list(stream)
    assert len(shared.transports) == 3
    assert sorted(len(r) for r in shared.requests) == [50, 100, 100]
    assert sorted(result_indices(events)) == list(range(250))
    kinds = [e.event_type for e in events]
    assert kinds.count("metadata") == 1 and kinds.count("welcome") == 1
    assert kinds[-1] == "summary" and kinds.count("summary") == 1
    assert events[-1].data["total_urls"] == 250 and events[-1].data["successful"] == 250
    assert all(t.closed.is_set() for t in shared.transports)
    assert pumps_left() == []


def test_parallel_lane_drop_resumes_only_its_missing_urls():
    """One of two lanes drops after 10 results: its 90 missing URLs are asked again."""
    urls = [f"u{i}" for i in range(200)]
    shared = SharedScripts(partial(list(range(10))), whole(urls), whole(urls, welcome=False))
    sleeps = []
    stream = CrawlStream(shared.make, urls, None, stats=StreamStats(), parallel=2,
                         max_urls_per_request=100, progress_timeout=1.0, retry=policy(sleeps))
    events = list(stream)
    assert sorted(result_indices(events)) == list(range(200))
    assert len(shared.requests) == 3 and len(shared.requests[2]) == 90
    assert shared.requests[2] == urls[10:100]
    assert stream.stats.reconnects == 1 and stream.stats.resumed_urls == 90
    assert sleeps == []  # the lane delivered 10 results before it dropped
    assert pumps_left() == []


def test_parallel_close_from_other_thread_joins_pumps():
    """close() while two lanes are blocked ends the stream within a second, pumps joined."""
    urls = [f"u{i}" for i in range(200)]
    shared = SharedScripts([ev("metadata")], [ev("metadata")], block_at_end=True)
    stream = CrawlStream(shared.make, urls, None, stats=StreamStats(), parallel=2,
                         max_urls_per_request=100, progress_timeout=None)
    assert next(stream).event_type == "metadata"
    timer = threading.Timer(0.1, stream.close)
    timer.start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 1.0
    timer.join()
    assert pumps_left() == []


def test_parallel_one_request_uses_one_connection():
    """A list that fits one request opens one connection whatever parallel says."""
    shared = SharedScripts(whole(["a", "b"]))
    list(CrawlStream(shared.make, ["a", "b"], None, stats=StreamStats(), parallel=4))
    assert len(shared.transports) == 1


def test_slow_consumer_error_reaches_caller_as_itself():
    """overflow="error": the SlowConsumerError is raised as such, naming what is missing."""
    from riptide_sync.exceptions import SlowConsumerError

    script = [ev("metadata"), res(0, "a"), SlowConsumerError("queue full")]
    with pytest.raises(SlowConsumerError) as info:
        list(make(ScriptedTransport(script), ["a", "b"], retry=policy([])))
    assert info.value.missing == ["b"] and info.value.delivered == 1


# --- the hand-off cannot wait for nothing (issue 12) --------------------------------------


def test_parallel_pumps_do_not_accumulate():
    """Finished pump threads are forgotten: a long parallel stream holds at most one pump
    per lane, not one dead Thread per chunk. Failed before: _pumps kept every pump ever
    started (801 after 80,000 results)."""
    urls = [f"u{i}" for i in range(120)]
    shared = SharedScripts(*[whole(urls, welcome=False) for _ in range(120)])
    stream = CrawlStream(shared.make, urls, None, stats=StreamStats(), parallel=2,
                         max_urls_per_request=1, progress_timeout=5.0)
    seen = 0
    most = 0
    for event in stream:
        if event.event_type == "result":
            seen += 1
            if seen > 10:
                most = max(most, len(stream._core.fanin._pumps))
    assert seen == 120
    assert most <= 3
    assert pumps_left() == []


def test_parallel_pump_stuck_past_its_deadline_is_ended_by_the_consumer():
    """A transport whose receive() ignores its timeout (stuck in a blocking call) cannot
    hold the consumer in the hand-off for ever: past the lane's deadline plus a margin the
    consumer ends that request itself, and the retry resumes it. Failed before: the
    consumer waited in the hand-off with no deadline of its own (the stream hung)."""
    urls = [f"u{i}" for i in range(4)]
    # Lane 1's first request delivers one result, then its source blocks for ever.
    shared = SharedScripts(whole(urls, welcome=False), partial([0], welcome=False),
                           whole(urls, welcome=False), block_at_end=True)
    stream = CrawlStream(shared.make, urls, None, stats=StreamStats(), parallel=2,
                         max_urls_per_request=2, progress_timeout=0.2, retry=policy([]))
    box: list = []

    def consume():
        try:
            box.append(list(stream))
        except BaseException as exc:  # noqa: BLE001
            box.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(15)
    stuck = thread.is_alive()
    stream.close()
    assert not stuck, "the consumer waited in the hand-off for a stuck pump"
    events = box[0]
    assert sorted(result_indices(events)) == [0, 1, 2, 3]
    assert time.monotonic() - started < 12
    assert shared.requests[2] == ["u3"]


def test_failure_after_progress_resumes_at_once_without_backoff():
    """Recovery time: a request cut after delivering results is resumed at once; the
    policy's backoff paces consecutive failures without progress. Failed before: every
    drop slept the initial backoff (0.5-0.75 s each; 13 s of a 2,000-URL faulty crawl)."""
    urls = [f"u{i}" for i in range(6)]
    sleeps = []
    transport = ScriptedTransport(partial([0]), partial([0], welcome=False), partial([], welcome=False),
                                  whole(urls, welcome=False))
    events = list(make(transport, urls, retry=policy(sleeps, max_attempts=3)))
    assert sorted(result_indices(events)) == list(range(6))
    assert sleeps == [0.2]  # only the failure that came without progress waited


def test_summary_due_when_the_server_says_it_finished():
    """A result whose server progress says completed == total: the summary is due now, so
    a lost summary costs the summary grace even when a result was dropped (pending > 0).
    Failed before: the whole progress deadline."""
    urls = ["a", "b", "c"]

    def script(sent):
        events = [ev("metadata", total_urls=len(sent))]
        # "b" was dropped by the server; the last result it sent says 3 of 3.
        events.append(ev("result", index=0, result={"url": sent[0]},
                         progress={"completed": 1, "total": 3}))
        events.append(ev("result", index=2, result={"url": sent[2]},
                         progress={"completed": 3, "total": 3}))
        return events

    class DeadlineTransport(ScriptedTransport):
        def open_crawl(self, urls, options):
            source = super().open_crawl(urls, options)
            inner = source.receive

            waits = self.waits

            class Source:
                def receive(self, timeout):
                    try:
                        return inner(timeout)
                    except StreamConnectionError:
                        waits.append(timeout)
                        raise StreamTimeoutError(f"no event within {timeout:g} s") from None

                def close(self):
                    pass

            return Source()

    transport = DeadlineTransport(script, whole(urls, welcome=False))
    transport.waits = []
    stream = make(transport, urls, retry=policy([]), progress_timeout=60.0)
    events = list(stream)
    assert sorted(result_indices(events)) == [0, 1, 2]
    assert transport.requests[1] == ["b"]
    assert transport.waits == [5.0]  # the summary grace, not the 60 s progress deadline


# --- the retry log (issue 15): every decision on riptide_sync.stream at INFO ------------------


def stream_log(caplog, level=logging.INFO):
    return [r.getMessage() for r in caplog.records if r.name == "riptide_sync.stream"
            and r.levelno == level]


@pytest.mark.parametrize(("delivered", "decision", "missing"), [
    ([], "retrying in 0.1 s", 3),  # a drop without progress: the backoff
    ([1], "retrying at once", 2),  # results came first: resumed at once
])
def test_retry_and_resume_are_logged(caplog, delivered, decision, missing):
    """One line for the decision (cause, delay, URLs still without a result), one for the
    resume (URLs re-requested)."""
    caplog.set_level(logging.INFO, logger="riptide_sync.stream")
    urls = ["a", "b", "c"]
    transport = ScriptedTransport(partial(delivered), whole(urls, welcome=False))
    list(make(transport, urls, retry=policy([], max_attempts=2)))
    assert stream_log(caplog) == [
        f"! scripted stream: connection lost; {decision} (failure 1 in a row, "
        f"{missing} URL(s) without a result)",
        f"> resumed the scripted stream: re-requested {missing} URL(s) without a result",
    ]


def test_giving_up_is_logged_at_debug(caplog):
    """A decision not to retry is logged at DEBUG: the exception raised next says it at
    once, and the command line shows INFO (its one error line stays one line)."""
    caplog.set_level(logging.DEBUG, logger="riptide_sync.stream")
    transport = ScriptedTransport(partial([]))
    with pytest.raises(IncompleteStreamError):
        list(make(transport, ["a", "b"], retry=policy([], max_attempts=1)))
    assert stream_log(caplog, logging.DEBUG) == [
        "! scripted stream: connection lost; giving up (failure 1 in a row, "
        "2 URL(s) without a result)",
    ]
    assert stream_log(caplog) == []  # nothing at INFO


def test_a_failure_no_retry_can_fix_is_logged_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="riptide_sync.stream")
    transport = ScriptedTransport(AuthenticationError("no key", status_code=401))
    with pytest.raises(AuthenticationError):
        list(make(transport, ["a"], retry=policy([])))
    assert stream_log(caplog, logging.DEBUG) == [
        "! scripted stream: HTTP 401: no key; not retrying (no retry can fix it) (failure 1 "
        "in a row, 1 URL(s) without a result)",
    ]


def test_a_refusal_is_logged_at_debug_as_not_retried(caplog):
    caplog.set_level(logging.DEBUG, logger="riptide_sync.stream")
    transport = ScriptedTransport([ev("error", error_type="validation_error", message="bad URL")])
    with pytest.raises(IncompleteStreamError):
        list(make(transport, ["a"], retry=policy([])))
    assert stream_log(caplog, logging.DEBUG) == [
        "! scripted stream: validation_error: bad URL; not retrying (the server refused the request) "
        "(1 URL(s) without a result)",
    ]
