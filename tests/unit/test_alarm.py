"""The process's one alarm thread (riptide_sync._alarm): order, cancel, idle end, fork."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from riptide_sync import _alarm


def _alarm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == _alarm.THREAD_NAME]


def test_calls_in_time_order_on_one_thread() -> None:
    fired: list[tuple[str, str]] = []
    done = threading.Event()

    def note(name: str) -> None:
        fired.append((name, threading.current_thread().name))
        if len(fired) == 3:
            done.set()

    _alarm.schedule(0.06, lambda: note("c"))
    _alarm.schedule(0.02, lambda: note("a"))
    _alarm.schedule(0.04, lambda: note("b"))
    assert done.wait(2)
    assert fired == [("a", "riptide-alarm"), ("b", "riptide-alarm"), ("c", "riptide-alarm")]
    assert len(_alarm_threads()) == 1


def test_a_cancelled_call_never_runs() -> None:
    fired = threading.Event()
    handle = _alarm.schedule(0.03, fired.set)
    assert handle.cancel() is True
    assert handle.cancel() is True  # idempotent
    assert not fired.wait(0.1)
    assert not handle.fired


def test_cancel_waits_for_a_running_callback() -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.1)
        finished.set()

    handle = _alarm.schedule(0.0, slow)
    assert started.wait(2)
    assert handle.cancel() is False  # too late: it fired
    assert finished.is_set()  # nothing it does happens after cancel() returned
    assert handle.fired


def test_a_failing_callback_is_logged_and_the_alarm_goes_on(caplog) -> None:
    fired = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    _alarm.schedule(0.0, boom)
    _alarm.schedule(0.02, fired.set)
    assert fired.wait(2)
    assert any("alarm callback failed" in r.getMessage() for r in caplog.records)


def test_the_thread_ends_when_idle_and_starts_again() -> None:
    handle = _alarm.schedule(30, lambda: None)
    assert len(_alarm_threads()) == 1
    handle.cancel()
    deadline = time.monotonic() + _alarm.LINGER + 2
    while _alarm_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alarm_threads()  # no thread left behind
    fired = threading.Event()
    _alarm.schedule(0.0, fired.set)
    assert fired.wait(2)


def test_many_cancelled_entries_do_not_pile_up() -> None:
    keep = _alarm.schedule(30, lambda: None)
    for _ in range(1000):
        _alarm.schedule(30, lambda: None).cancel()
    assert len(_alarm._alarm.heap) <= 64 + 4
    keep.cancel()
    assert _alarm._alarm.heap == []


_FORK_SCRIPT = r"""
import os, threading, time
from riptide_sync import _alarm

def alarm_threads():
    return [t for t in threading.enumerate() if t.name == _alarm.THREAD_NAME]

_alarm.schedule(0.0, lambda: None)
time.sleep(0.05)
assert alarm_threads()  # idle, lingering
pid = os.fork()
if pid == 0:
    ok = not alarm_threads() and not _alarm._alarm.heap
    fired = threading.Event()
    _alarm.schedule(0.0, fired.set)
    os._exit(0 if ok and fired.wait(2) else 1)
# The idle thread was stopped before the fork (Python 3.12+ warns on a fork with threads
# alive): the parent has none either until the next schedule().
assert not alarm_threads(), threading.enumerate()
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print("ok")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no fork() on Windows")
def test_fork_stops_an_idle_alarm_and_the_child_starts_afresh() -> None:
    """In a fresh interpreter (the test process may have eventlet loaded, which warns on
    every fork)."""
    out = subprocess.run([sys.executable, "-W", "error", "-c", _FORK_SCRIPT],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_requests_in_a_row_do_not_wake_the_thread_each_time(monkeypatch) -> None:
    """schedule()+cancel() pairs (a POST's header deadline, each far off): the alarm
    thread is woken at most once for the lot, not twice per request (a GIL hand-off each)."""
    _alarm.schedule(30, lambda: None).cancel()  # the thread exists and lingers
    time.sleep(0.05)
    notifies = []
    cond = _alarm._alarm.cond
    original = cond.notify
    monkeypatch.setattr(cond, "notify", lambda n=1: (notifies.append(n), original(n)))
    for _ in range(100):
        _alarm.schedule(30, lambda: None).cancel()
    assert len(notifies) <= 1
    fired = threading.Event()
    _alarm.schedule(0.01, fired.set)  # due before the linger ends: it is woken for it
    assert fired.wait(1)


def test_one_wake_up_is_enough_until_the_thread_has_had_it(monkeypatch) -> None:
    """The thread sleeps towards a far deadline that is then cancelled: that cancel wakes
    it, and the schedule()+cancel() pairs that follow before it has run (the caller holds
    the GIL) need no wake-up of their own. Before, every one of them woke it again."""
    far = _alarm.schedule(30, lambda: None)
    alarm = _alarm._alarm
    deadline = time.monotonic() + 5
    while alarm.sleep_until < far.when and time.monotonic() < deadline:
        time.sleep(0.005)  # until the thread sleeps towards `far`
    assert alarm.sleep_until == far.when
    notifies = []
    original = alarm.cond.notify
    monkeypatch.setattr(alarm.cond, "notify", lambda n=1: (notifies.append(n), original(n)))
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # the thread does not get the GIL in between: the worst case
    try:
        far.cancel()
        for _ in range(100):
            _alarm.schedule(30, lambda: None).cancel()
    finally:
        sys.setswitchinterval(previous)
    assert len(notifies) == 1
