"""Crawl bookkeeping (riptide_sync.protocol.session): pure, exhaustive."""

import pytest

from riptide_sync.protocol.session import CrawlSession, ResultRejected


def ok(url, cached=False):
    return {"url": url, "error": None, "from_cache": cached}


def failed(url):
    return {"url": url, "error": {"error_type": "processing_error"}, "from_cache": False}


def result(index, res):
    return {"index": index, "result": res, "progress": {"completed": 99, "total": 99}}


def test_session_single_request_maps_indices_and_progress():
    """One request: indices pass through, progress counts over the caller's list."""
    session = CrawlSession(["u0", "u1", "u2"])
    plan = session.next_request()
    assert plan.indices == (0, 1, 2) and plan.urls == ["u0", "u1", "u2"]
    assert session.next_request() is None  # everything is in flight
    data = session.accept_result(plan, result(2, ok("u2")))
    assert data["index"] == 2
    assert data["progress"] == {"completed": 1, "total": 3, "success_rate": 1.0}
    data = session.accept_result(plan, result(0, failed("u0")))
    assert data["progress"] == {"completed": 2, "total": 3, "success_rate": 0.5}
    assert session.release(plan) == [1]
    assert session.missing_indices() == [1] and session.missing_urls() == ["u1"]


def test_session_chunks_by_max_per_request():
    """250 URLs with a limit of 100 make requests of 100, 100 and 50."""
    urls = [f"u{i}" for i in range(250)]
    session = CrawlSession(urls, max_per_request=100)
    plans = [session.next_request() for _ in range(3)]
    assert [len(p.indices) for p in plans] == [100, 100, 50]
    assert plans[2].indices[0] == 200 and plans[2].urls[0] == "u200"
    assert session.next_request() is None
    data = session.accept_result(plans[2], result(5, ok("u205")))
    assert data["index"] == 205


def test_session_resume_asks_only_missing_and_maps_back():
    """After a loss, the next request holds only the missing URLs, mapped back on arrival."""
    session = CrawlSession(["a", "b", "c", "d"])
    first = session.next_request()
    session.accept_result(first, result(0, ok("a")))
    session.accept_result(first, result(2, ok("c")))
    assert session.release(first) == [1, 3]
    second = session.next_request()
    assert second.urls == ["b", "d"] and second.indices == (1, 3)
    assert second.number == 1
    data = session.accept_result(second, result(1, ok("d")))
    assert data["index"] == 3
    assert data["progress"]["completed"] == 3


def test_session_duplicate_result_is_refused():
    """A second result for a delivered position returns None and changes no count."""
    session = CrawlSession(["a", "b"])
    plan = session.next_request()
    assert session.accept_result(plan, result(0, ok("a"))) is not None
    assert session.accept_result(plan, result(0, ok("a"))) is None
    assert (session.completed, session.successful) == (1, 1)


def test_session_duplicate_urls_are_separate_positions():
    """The same URL listed twice needs two results."""
    session = CrawlSession(["a", "a"])
    plan = session.next_request()
    session.accept_result(plan, result(1, ok("a")))
    assert not session.complete
    session.accept_result(plan, result(0, ok("a")))
    assert session.complete


@pytest.mark.parametrize("bad", [None, "0", 2, -1, 1.0, True])
def test_session_rejects_index_outside_request(bad):
    """An index that is not an int within the request raises ResultRejected."""
    session = CrawlSession(["a", "b"])
    plan = session.next_request()
    with pytest.raises(ResultRejected):
        session.accept_result(plan, {"index": bad, "result": ok("a")})


def test_session_summary_passes_through_matching_server_summary():
    """A clean single request keeps the server's summary exactly."""
    session = CrawlSession(["a", "b"])
    plan = session.next_request()
    session.accept_result(plan, result(0, ok("a")))
    session.accept_result(plan, result(1, failed("b")))
    server = {"total_urls": 2, "successful": 1, "failed": 1, "total_processing_time_ms": 7}
    assert session.summary([server], 99) == server


def test_session_summary_recomputed_over_several_requests():
    """Counts cover every request; cache fields recomputed where the server sent them."""
    session = CrawlSession(["a", "b", "c"], max_per_request=2)
    p1, p2 = session.next_request(), session.next_request()
    session.accept_result(p1, result(0, ok("a", cached=True)))
    session.accept_result(p1, result(1, failed("b")))
    session.accept_result(p2, result(0, ok("c")))
    summaries = [
        {"total_urls": 2, "successful": 1, "failed": 1, "from_cache": 1, "cache_hit_rate": 0.5},
        {"total_urls": 1, "successful": 1, "failed": 0, "from_cache": 0, "cache_hit_rate": 0.0,
         "average_processing_time_ms": 3.0},
    ]
    summary = session.summary(summaries, 1200)
    assert summary == {
        "total_urls": 3,
        "successful": 2,
        "failed": 1,
        "from_cache": 1,
        "cache_hit_rate": 1 / 3,
        "average_processing_time_ms": 600.0,
        "total_processing_time_ms": 1200,
    }


def test_session_summary_without_server_summary():
    """When every server summary was lost, the summary is built from the results alone."""
    session = CrawlSession(["a"])
    plan = session.next_request()
    session.accept_result(plan, result(0, ok("a")))
    assert session.summary([], 5) == {
        "total_urls": 1, "successful": 1, "failed": 0, "total_processing_time_ms": 5
    }


def test_session_metadata_and_progress_events_recounted():
    """Metadata covers the whole list; progress lines are recounted, and every one carries
    `completed` and `total` (issue 12: an SSE status had neither)."""
    session = CrawlSession([f"u{i}" for i in range(20)], max_per_request=10)
    assert session.metadata({"total_urls": 10, "stream_type": "crawl"})["total_urls"] == 20
    plan = session.next_request()
    for i in range(5):
        session.accept_result(plan, result(i, ok(f"u{i}")))
    ndjson = {"operation_id": "crawl_stream", "items_completed": 5, "items_total": 10,
              "progress_percentage": 50.0}
    assert session.rewrite_progress(ndjson) == {
        "operation_id": "crawl_stream", "items_completed": 5, "items_total": 20,
        "progress_percentage": 25.0, "completed": 5, "total": 20,
    }
    sse_status = {"items_processed": 5, "items_remaining": 5, "phase": "processing"}
    assert session.rewrite_progress(sse_status)["items_remaining"] == 15
    sse_progress = {"completed": 5, "total": 10, "success_rate": 1.0, "cache_hit_rate": 0.0}
    assert session.rewrite_progress(sse_progress)["total"] == 20


def test_session_checkpoint_positions_start_done():
    """Positions done before the session (a checkpoint) are never planned."""
    session = CrawlSession(["a", "b", "c"], done={1: ok("b")})
    plan = session.next_request()
    assert plan.urls == ["a", "c"]
    assert session.completed == 1


def test_session_release_twice_is_harmless():
    """Releasing a plan twice does not free positions of a newer plan."""
    session = CrawlSession(["a", "b"])
    first = session.next_request()
    session.release(first)
    second = session.next_request()
    session.release(first)
    assert session.next_request() is None
    assert second.indices == (0, 1)


def test_session_rejects_bad_limit():
    """max_per_request below 1 is a programming error."""
    with pytest.raises(ValueError):
        CrawlSession(["a"], max_per_request=0)


def test_session_plan_counts_resumed_positions():
    """A plan says how many of its positions an earlier request already asked for."""
    session = CrawlSession(["a", "b", "c", "d"], max_per_request=2)
    first, second = session.next_request(), session.next_request()
    assert (first.resumed, second.resumed) == (0, 0)
    session.accept_result(first, result(0, ok("a")))
    session.release(first)
    again = session.next_request()
    assert again.urls == ["b"] and again.resumed == 1


def test_session_planning_is_linear_in_list_size():
    """Complexity guard: with 100,000 URLs planned, asking again after every event is O(1).

    The driver asks for a next request after each event while a lane is idle; a rescan of
    the list per call (the bug this guards against) would take minutes here."""
    import time

    urls = [f"u{i}" for i in range(100_000)]
    session = CrawlSession(urls, max_per_request=100)
    started = time.perf_counter()
    plans = []
    while (plan := session.next_request()) is not None:
        plans.append(plan)
    assert sum(len(p.indices) for p in plans) == 100_000
    for _ in range(100_000):  # one call per event of the stream
        assert session.next_request() is None
    assert time.perf_counter() - started < 10.0


def test_session_returned_positions_come_first_in_order():
    """Positions given back by release() are asked again first, in the caller's order."""
    session = CrawlSession([f"u{i}" for i in range(6)], max_per_request=2)
    first = session.next_request()
    session.release(first)
    assert session.next_request().indices == (0, 1)
    assert session.next_request().indices == (2, 3)
