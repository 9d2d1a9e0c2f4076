"""The Deadline helper: one point in monotonic time, counted down by every wait."""

from __future__ import annotations

import time

from riptide_sync._deadline import Deadline


def test_none_never_expires() -> None:
    deadline = Deadline(None)
    assert deadline.remaining() is None
    assert not deadline.expired
    assert repr(deadline) == "Deadline(None)"


def test_counts_down_to_zero_never_below() -> None:
    deadline = Deadline(0.05)
    first = deadline.remaining()
    assert first is not None and 0 < first <= 0.05
    assert not deadline.expired
    time.sleep(0.06)
    assert deadline.remaining() == 0.0
    assert deadline.expired
    assert deadline.timeout == 0.05


def test_zero_is_expired_at_once() -> None:
    deadline = Deadline(0)
    assert deadline.expired and deadline.remaining() == 0.0
