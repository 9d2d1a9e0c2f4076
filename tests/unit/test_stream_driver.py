"""CrawlStream, the driver every transport plugs into, run on a scripted Transport.

The scripted transport is a real implementation of the ``Transport`` seam (it replays
events per request), not a mock: the driver's bookkeeping is what is under test here.
Transports themselves are tested over real sockets elsewhere.
"""

from __future__ import annotations

import gc
import queue
import threading
import time

import pytest

from riptide_sync import CrawlStream, StreamStats, StreamingResult
from riptide_sync.exceptions import (
    IncompleteStreamError,
    StreamConnectionError,
    StreamTimeoutError,
)


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

    def open_crawl(self, urls, options):
        self.requests.append(list(urls))
        script = self.scripts[len(self.requests) - 1]
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

        return Source()

    def close(self):
        self.closed.set()


def make(transport, urls, **kw):
    return CrawlStream(transport, list(urls), None, stats=StreamStats(), **kw)


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
    """A validation error instead of metadata is yielded, then the stream ends (§1.4)."""
    transport = ScriptedTransport([ev("welcome"), ev("error", error_type="validation_error",
                                                     message="Validation error: x")])
    events = list(make(transport, ["a"]))
    assert [e.event_type for e in events] == ["welcome", "error"]
    assert transport.closed.is_set()


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
