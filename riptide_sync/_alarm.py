"""One shared deadline thread for the whole process: ``schedule(delay, fn)`` calls ``fn()``
``delay`` seconds from now unless the returned handle is cancelled first.

The HTTP header deadline (:mod:`riptide_sync._http.wakeable`) and the WebSocket handshake
deadline (:mod:`riptide_sync._ws.handshake`) each used a ``threading.Timer``: one thread
started and joined per request, ~160 us of wall time per POST and ~0.6 ms of a WebSocket's
time to first result. Here one daemon thread, ``riptide-alarm``, keeps a heap of
``(when, callback)`` and sleeps on a condition variable until the earliest one.

Callbacks run on the alarm thread and must be short and never block (they shut a socket
down); an exception in one is logged, never raised.

No thread left behind: the thread is started on first use and ends by itself once it has
had nothing to wait for during :data:`LINGER` seconds (a stream's requests follow each
other much faster, so it lives as long as a stream does). Fork: a child starts afresh (no
inherited heap, lock or thread); before a ``fork()`` an idle alarm thread is stopped and
joined, so a process that forks between crawls has no thread but its own (Python 3.12+
warns when a process with threads forks).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Optional

from . import _fork

__all__ = ["schedule", "AlarmHandle", "LINGER", "THREAD_NAME"]

logger = logging.getLogger("riptide_sync")

LINGER = 0.5
"""Seconds the alarm thread waits with nothing scheduled before it ends."""

THREAD_NAME = "riptide-alarm"

_CANCEL_WAIT = 1.0
"""Longest ``cancel()`` waits for a callback that is running at that moment (s)."""

_PENDING, _RUNNING, _DONE, _CANCELLED = range(4)


class AlarmHandle:
    """A scheduled call; :meth:`cancel` it when the deadline no longer matters."""

    __slots__ = ("when", "_fn", "_state", "_owner", "_generation")

    def __init__(self, owner: _Alarm, when: float, fn: Callable[[], None]) -> None:
        self._owner = owner
        self._generation = owner.generation
        """The heap it is in (_reset, in a forked child, starts a new one)."""
        self.when = when
        """The monotonic time the call is due."""
        self._fn: Optional[Callable[[], None]] = fn
        self._state = _PENDING

    @property
    def fired(self) -> bool:
        """True once the callback has started (it ran, or is running)."""
        return self._state in (_RUNNING, _DONE)

    def cancel(self) -> bool:
        """Do not call the callback (idempotent, any thread). If it is running on the alarm
        thread right now, wait for it to end (at most 1 s), so that nothing it does can
        happen after ``cancel()`` returns. True when it never fired (now or before)."""
        alarm = self._owner
        with alarm.cond:
            if self._state == _PENDING:
                self._state = _CANCELLED
                self._fn = None
                if alarm.generation == self._generation:
                    alarm.cancelled_one()  # not a heap inherited through fork()
                return True
            if (self._state == _RUNNING and alarm.generation == self._generation
                    and threading.current_thread() is not alarm.thread):
                alarm.cond.wait_for(lambda: self._state != _RUNNING, _CANCEL_WAIT)
            return self._state == _CANCELLED


class _Alarm:
    """The process's one alarm (module singleton ``_alarm``)."""

    def __init__(self) -> None:
        self.generation = 0
        self._reset()

    def _reset(self) -> None:
        self.generation += 1
        self.cond = threading.Condition(threading.Lock())
        self.heap: list[tuple[float, int, AlarmHandle]] = []
        self.live = 0
        """Entries in the heap that are still pending (the others are cancelled)."""
        self.thread: Optional[threading.Thread] = None
        self.sleep_until = 0.0
        """When the thread's current wait ends by itself (monotonic): a new entry due
        later needs no wake-up (each one is a GIL hand-off, measurable per request)."""
        self.stop = False
        self._seq = itertools.count()

    def schedule(self, delay: float, fn: Callable[[], None]) -> AlarmHandle:
        handle = AlarmHandle(self, time.monotonic() + max(0.0, delay), fn)
        with self.cond:
            heapq.heappush(self.heap, (handle.when, next(self._seq), handle))
            self.live += 1
            if self.thread is None:
                self.stop = False
                self.sleep_until = 0.0  # it looks at the heap before it first sleeps
                self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self.thread.start()
            elif handle.when < self.sleep_until:
                self._wake()  # earlier than what the thread sleeps towards
        return handle

    def _wake(self) -> None:
        """(Lock held.) Wake the sleeping thread so it looks at the heap again. Until it
        has, ``sleep_until`` says it is awake: the schedule()/cancel() pairs that follow
        (a run of requests, faster than the thread gets the GIL back) need no wake-up
        each, only the one already on its way."""
        self.sleep_until = 0.0
        self.cond.notify()

    def cancelled_one(self) -> None:
        """(Lock held.) One pending entry was cancelled; compact a heap that is mostly
        cancelled entries (each stays until its time otherwise)."""
        self.live -= 1
        if self.live == 0:
            self.heap.clear()
            if self.sleep_until > time.monotonic() + LINGER:
                self._wake()  # it sleeps towards a cancelled entry: linger instead
        elif len(self.heap) > 64 and len(self.heap) > 4 * self.live:
            self.heap = [entry for entry in self.heap if entry[2]._state == _PENDING]
            heapq.heapify(self.heap)

    def _run(self) -> None:
        cond = self.cond
        idle_until: Optional[float] = None
        with cond:
            try:
                while not self.stop:
                    heap = self.heap  # cancelled_one() may replace it
                    while heap and heap[0][2]._state != _PENDING:
                        heapq.heappop(heap)
                    now = time.monotonic()
                    if not heap:
                        # Idle: end after LINGER s; the next schedule() starts a new thread.
                        if idle_until is None:
                            idle_until = now + LINGER
                        elif now >= idle_until:
                            break
                        self.sleep_until = idle_until
                        cond.wait(idle_until - now)
                        continue
                    idle_until = None
                    when, _, handle = heap[0]
                    if when > now:
                        self.sleep_until = when
                        cond.wait(when - now)
                        continue
                    heapq.heappop(heap)
                    self.live -= 1
                    self.sleep_until = 0.0  # awake: a schedule() meanwhile needs no wake
                    handle._state = _RUNNING
                    fn, handle._fn = handle._fn, None
                    cond.release()
                    try:
                        assert fn is not None
                        fn()
                    except Exception:  # noqa: BLE001 - a deadline must not kill the alarm
                        logger.exception("! an alarm callback failed")
                    finally:
                        cond.acquire()
                        handle._state = _DONE
                        cond.notify_all()  # a cancel() waiting for this callback
            finally:
                if self.thread is threading.current_thread():
                    self.thread = None

    # --- fork ---------------------------------------------------------------------------

    def _before_fork(self) -> None:
        """Stop an idle alarm thread before ``fork()`` (bounded: 1 s); a busy one (a
        deadline pending for another thread's request) goes on."""
        with self.cond:
            thread = self.thread
            if thread is None or self.live:
                return
            self.stop = True
            self.cond.notify()
        thread.join(1.0)

    def _after_fork_in_child(self) -> None:
        """The child has no alarm thread, and the parent's deadlines are not its own."""
        self._reset()


_alarm = _Alarm()


def schedule(delay: float, fn: Callable[[], None]) -> AlarmHandle:
    """Call ``fn()`` on the alarm thread ``delay`` seconds from now (monotonic clock),
    unless the handle is cancelled first. ``fn`` must be short and must not block."""
    return _alarm.schedule(delay, fn)


_fork.register(_alarm)  # the process's one at-fork registry (before the fork, and in the child)
