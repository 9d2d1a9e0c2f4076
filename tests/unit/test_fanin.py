"""The fan-in's choice of lane on the consumer's hot path (riptide_sync._fanin).

Two watched lanes, as a parallel stream has them: sources that say at once whether an event
is queued (``ready()``), like the WebSocket reader's queue and the HTTP read-ahead.
"""

from __future__ import annotations

import collections
import itertools

from riptide_sync import RetryPolicy, StreamingResult
from riptide_sync._fanin import _STAY, FanIn, Lane
from riptide_sync.protocol.events import RequestState
from riptide_sync.protocol.session import RequestPlan
from riptide_sync.retry import RetryTracker


class QueuedSource:
    """A watched source holding ``count`` events; counts its ``ready()`` calls."""

    def __init__(self, name: str, count: int) -> None:
        self.events = collections.deque(
            StreamingResult("progress", {"lane": name, "n": n}) for n in range(count))
        self.ready_calls = 0

    def watch(self, wake) -> bool:
        return True

    def ready(self) -> bool:
        self.ready_calls += 1
        return bool(self.events)

    def receive(self, timeout):
        return self.events.popleft()

    def close(self) -> None:
        pass


def lanes(*sources: QueuedSource) -> tuple[FanIn, list[Lane]]:
    fanin = FanIn(progress_timeout=None, summary_timeout=5.0)
    made = []
    for number, source in enumerate(sources):
        lane = Lane(None, RetryTracker(RetryPolicy()))
        lane.request = RequestState(RequestPlan(number, (0,), ["https://example.org/"]), 1)
        lane.source = source
        fanin.multiplex(lane)
        assert lane.watched
        made.append(lane)
    return fanin, made


def test_a_busy_lane_is_read_with_one_ready_check_per_event_when_the_other_is_empty() -> None:
    """The other lane waiting for its crawl must not cost every event of the busy one a
    miss and the slow path (before: 3 ready() calls per event, now 1)."""
    busy, idle = QueuedSource("busy", 1000), QueuedSource("idle", 0)
    fanin, active = lanes(idle, busy)
    for _ in range(1000):
        lane, item = fanin.next_item(active)
        assert lane is active[1] and item.data["lane"] == "busy"
    calls = busy.ready_calls + idle.ready_calls
    assert calls <= 1000 * 1.1, calls


def test_two_busy_lanes_take_turns_in_streaks() -> None:
    """Both lanes have events: the consumer stays on one for _STAY events, then the other;
    neither waits longer than that."""
    fanin, active = lanes(QueuedSource("a", 200), QueuedSource("b", 200))
    order = [fanin.next_item(active)[1].data["lane"] for _ in range(400)]
    streaks = [len(list(group)) for _, group in itertools.groupby(order)]
    assert max(streaks) <= _STAY
    assert order.count("a") == order.count("b") == 200
    assert len(streaks) <= 2 * (400 // _STAY + 1)  # streaks, not a switch per event
