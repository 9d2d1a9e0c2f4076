"""The per-event rules of a logical stream (protocol/events.py), fed dict literals.

No transport, no thread, no clock: each test plans requests on a CrawlSession, hands
events to StreamEvents.handle and checks what it yields and the outcome it returns.
"""

from __future__ import annotations

import pytest

from riptide_sync.models import StreamingResult
from riptide_sync.protocol.envelope import MALFORMED_MESSAGE
from riptide_sync.protocol.events import EventOutcome, RequestState, StreamEvents, is_refusal
from riptide_sync.protocol.session import CrawlSession


def ev(kind, **data):
    return StreamingResult(kind, data, "2026-01-01T00:00:00Z")


def result(index, url, **progress):
    return ev("result", index=index, result={"url": url, "error": None}, progress=progress)


def rules_for(urls, per_request=100):
    session = CrawlSession(urls, max_per_request=per_request)
    return StreamEvents(session), session


def test_a_clean_request_yields_each_result_once_with_caller_indices():
    rules, session = rules_for(["a", "b", "c"], per_request=2)
    first = rules.start(session.next_request())
    second = rules.start(session.next_request())
    assert (first.pending, second.pending) == (2, 1)
    out, outcome = rules.handle(second, result(0, "c"))
    assert outcome is EventOutcome.DELIVERED and out is not None
    assert out.event_type == "result" and out.data["index"] == 2
    assert out.data["progress"] == {"completed": 1, "total": 3, "success_rate": 1.0}
    assert out.timestamp == "2026-01-01T00:00:00Z"
    assert second.pending == 0 and second.summary_due
    out, outcome = rules.handle(first, result(1, "b"))
    assert outcome is EventOutcome.DELIVERED and out is not None and out.data["index"] == 1
    assert first.pending == 1 and not first.summary_due


def test_a_duplicate_result_is_suppressed_and_not_counted_as_pending():
    rules, session = rules_for(["a", "b"])
    request = rules.start(session.next_request())
    assert rules.handle(request, result(0, "a"))[1] is EventOutcome.DELIVERED
    assert rules.handle(request, result(0, "a")) == (None, EventOutcome.DUPLICATE)
    assert request.pending == 1 and session.completed == 1


def test_a_result_outside_its_request_becomes_an_invalid_result_error():
    rules, session = rules_for(["a"])
    request = rules.start(session.next_request())
    out, outcome = rules.handle(request, result(5, "x"))
    assert outcome is EventOutcome.CONTINUE and out is not None
    assert out.event_type == "error" and out.data["error_type"] == "invalid_result"
    assert "outside the request" in out.data["message"]
    assert request.answered and request.pending == 1  # still due: an error is not a result


def test_welcome_and_metadata_are_yielded_once_per_logical_stream():
    rules, session = rules_for(["a", "b"], per_request=1)
    first = rules.start(session.next_request())
    second = rules.start(session.next_request())
    welcome = ev("welcome", session_id="s1")
    assert rules.handle(first, welcome) == (welcome, EventOutcome.CONTINUE)
    out, outcome = rules.handle(first, ev("metadata", total_urls=1, stream_type="crawl"))
    assert outcome is EventOutcome.CONTINUE and out is not None
    assert out.data == {"total_urls": 2, "stream_type": "crawl"}  # the whole list
    assert rules.handle(second, ev("welcome", session_id="s2")) == (None, EventOutcome.CONTINUE)
    assert rules.handle(second, ev("metadata", total_urls=1)) == (None, EventOutcome.CONTINUE)
    assert second.answered  # a second metadata still answers its own request


def test_progress_is_recounted_over_the_whole_list():
    rules, session = rules_for(["a", "b", "c", "d"], per_request=2)
    request = rules.start(session.next_request())
    rules.handle(request, result(0, "a"))
    out, outcome = rules.handle(request, ev("progress", completed=1, total=2, note="kept"))
    assert outcome is EventOutcome.CONTINUE and out is not None
    assert out.data == {"completed": 1, "total": 4, "note": "kept"}
    assert not request.server_done


@pytest.mark.parametrize("event", [
    ev("progress", completed=2, total=2),
    ev("progress", items_completed=2, items_total=2),
    ev("progress", progress_percentage=100.0),
    ev("result", index=0, result={"url": "a"}, progress={"completed": 2, "total": 2}),
])
def test_the_server_saying_it_finished_makes_only_the_summary_due(event):
    rules, session = rules_for(["a", "b"])
    request = rules.start(session.next_request())
    rules.handle(request, event)
    assert request.server_done and request.summary_due and request.pending >= 1


def test_a_summary_ends_its_request_and_is_kept():
    rules, session = rules_for(["a"])
    request = rules.start(session.next_request())
    rules.handle(request, result(0, "a"))
    assert rules.handle(request, ev("summary", total_urls=1, successful=1, failed=0)) == (
        None, EventOutcome.DONE)
    assert rules.summaries == [{"total_urls": 1, "successful": 1, "failed": 0}]
    assert EventOutcome.DONE.ends_request and EventOutcome.REFUSED.ends_request
    assert not any(o.ends_request for o in (EventOutcome.CONTINUE, EventOutcome.DELIVERED,
                                            EventOutcome.DUPLICATE))


def test_an_error_before_the_answer_is_a_refusal_and_is_yielded():
    rules, session = rules_for(["a"])
    request = rules.start(session.next_request())
    refusal = ev("error", error_type="validation_error", message="too many URLs")
    assert rules.handle(request, refusal) == (refusal, EventOutcome.REFUSED)


@pytest.mark.parametrize("answer", [
    ev("metadata", total_urls=1),
    result(0, "a"),
])
def test_an_error_after_the_answer_is_passed_through(answer):
    rules, session = rules_for(["a", "b"])
    request = rules.start(session.next_request())
    rules.handle(request, answer)
    late = ev("error", error_type="internal_error", message="boom")
    assert rules.handle(request, late) == (late, EventOutcome.CONTINUE)


def test_a_malformed_message_error_is_never_a_refusal():
    rules, session = rules_for(["a"])
    request = rules.start(session.next_request())
    bad = ev("error", error_type=MALFORMED_MESSAGE, message="not JSON")
    assert rules.handle(request, bad) == (bad, EventOutcome.CONTINUE)


def test_an_unknown_event_type_passes_through():
    rules, session = rules_for(["a"])
    request = rules.start(session.next_request())
    newer = ev("heartbeat", n=1)
    assert rules.handle(request, newer) == (newer, EventOutcome.CONTINUE)
    assert not request.answered


def test_a_resumed_plan_counts_only_positions_still_without_a_result():
    rules, session = rules_for(["a", "b", "c"])
    plan = session.next_request()
    request = rules.start(plan)
    rules.handle(request, result(1, "b"))
    assert session.release(plan) == [0, 2]
    resumed = rules.start(session.next_request())
    assert resumed.pending == 2 and resumed.plan.resumed == 2
    assert isinstance(resumed, RequestState) and not resumed.answered


@pytest.mark.parametrize(("kind", "data", "answered", "refused"), [
    ("error", {"error_type": "validation_error"}, False, True),
    ("error", {"error_type": "unknown_request"}, False, True),
    ("error", {"error_type": "feature_disabled"}, False, True),
    ("error", {}, False, True),  # no type at all: still the server's answer
    ("error", {"error_type": "validation_error"}, True, False),
    ("error", {"error_type": MALFORMED_MESSAGE}, False, False),
    ("metadata", {}, False, False),
    ("result", {"error_type": "validation_error"}, False, False),
])
def test_is_refusal(kind, data, answered, refused):
    assert is_refusal(kind, data, answered) is refused
