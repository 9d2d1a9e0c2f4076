"""One read-ahead thread per HTTP transport (one lane of a parallel stream), reused by the
lane's requests one after another.

In a parallel stream the consumer waits for whichever request has an event, so a
response cannot be read on the consumer's thread: a thread reads its body (only
``read1()`` calls; the consumer decodes). Starting a thread per request and joining it
after the summary cost ~0.3 ms of wall time per 100 results, enough for the default
``parallel=2`` to be slower than ``parallel=1`` on a fast server. :class:`LaneReader`
is one thread, ``riptide-http-reader``, started on the lane's first read-ahead and ended
by the transport's ``close()``: between requests it sleeps on a condition variable.

What it runs is a request's POST while another request of the stream is streaming
(:mod:`riptide_sync._http.opening`), and the source's own loop
(``HTTPEventSource._read_ahead``), which ends at the
end of the body, the first error, or the source's ``close()`` (a socket shutdown wakes
it), and then sets the source's ``ahead_done`` event.

Fork: a child has no reader thread; a transport inherited through ``fork()`` is never read
in the child (its stream refuses: it checks the pid it was opened in), so the child's copy just refuses
new work.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, Optional

from .. import _fork

__all__ = ["LaneReader", "THREAD_NAME"]

THREAD_NAME = "riptide-http-reader"

_JOIN_TIMEOUT = 1.0
"""Longest ``stop()`` waits for the thread to end (s): no reader outlives close()."""


class LaneReader:
    """Runs read-ahead jobs one after another on one thread (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._stopped = False
        self._thread: Optional[threading.Thread] = None
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._jobs = collections.deque()
        self._stopped = True
        self._thread = None

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The reader thread, once started (None before, and in a forked child)."""
        return self._thread

    def run(self, job: Callable[[], None]) -> bool:
        """Run ``job()`` on the reader thread once the jobs before it have returned.
        False when the reader was stopped (the caller then reads some other way)."""
        with self._cond:
            if self._stopped:
                return False
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
            else:
                self._cond.notify()
        return True

    def _run(self) -> None:
        cond = self._cond
        jobs = self._jobs
        while True:
            with cond:
                while not jobs and not self._stopped:
                    cond.wait()
                if not jobs:
                    return  # stopped, nothing left
                job = jobs.popleft()
            job()  # never raises: the source hands its failures to the consumer

    def stop(self) -> None:
        """End the thread once its current job has returned (the caller closes the sources
        first, which ends their reads); waits at most 1 s. Idempotent, any thread."""
        with self._cond:
            self._stopped = True  # jobs queued still run: their sources are closed, quick
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT)
