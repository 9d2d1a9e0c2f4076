"""Property-based test (hypothesis) of the per-event rules (protocol/events.py).

Whatever the order, the duplicates and the requests the server's results arrive in, each
of the caller's positions is yielded at most once, and a request is pending exactly its
positions not yet delivered.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from riptide_sync.models import StreamingResult
from riptide_sync.protocol.events import EventOutcome, StreamEvents
from riptide_sync.protocol.session import CrawlSession


@settings(deadline=None)
@given(
    total=st.integers(min_value=1, max_value=12),
    per_request=st.integers(min_value=1, max_value=5),
    picks=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=80),
)
def test_each_position_is_yielded_at_most_once_whatever_the_order(total, per_request, picks):
    urls = [f"https://example.org/{i % 4}" for i in range(total)]  # duplicates in the list too
    session = CrawlSession(urls, max_per_request=per_request)
    rules = StreamEvents(session)
    requests = []
    while (plan := session.next_request()) is not None:
        requests.append(rules.start(plan))
    yielded: list[int] = []
    for which, server_index in picks:
        request = requests[which % len(requests)]
        index = server_index % len(request.plan.indices)  # results (and late copies) inside it
        data = {"index": index, "result": {"url": request.plan.urls[index]}, "progress": {}}
        out, outcome = rules.handle(request, StreamingResult("result", data))
        if outcome is EventOutcome.DELIVERED:
            assert out is not None
            yielded.append(out.data["index"])
        else:
            assert (out, outcome) == (None, EventOutcome.DUPLICATE)
    assert len(yielded) == len(set(yielded)) == session.completed
    for request in requests:
        still = [i for i in request.plan.indices if not session.is_delivered(i)]
        assert request.pending == len(still)
