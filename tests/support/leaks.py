"""What a test leaves behind: threads of ours still running, file descriptors still open.

The checks poll: a thread that is ending (joined by another thread, a daemon finishing its
last line) gets ``within`` seconds, and what is still there after that is returned, so the
test's own assertion says what it expects (``== []``, or a ``pytest.fail`` message).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection
from typing import TypeVar

T = TypeVar("T")

POLL = 0.01
"""Seconds between two looks."""


def threads_named(name: str | None = None, *, prefix: str | None = None) -> list[threading.Thread]:
    """The live threads called ``name`` exactly, or whose name starts with ``prefix``."""
    if (name is None) == (prefix is None):
        raise TypeError("give exactly one of name and prefix")
    if name is not None:
        return [t for t in threading.enumerate() if t.name == name]
    assert prefix is not None
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def threads_since(before: Collection[threading.Thread]) -> set[threading.Thread]:
    """The live threads that were not in ``before`` (a ``set(threading.enumerate())``)."""
    return set(threading.enumerate()) - set(before)


def still_there(look: Callable[[], Collection[T]], within: float) -> Collection[T]:
    """Look every 10 ms for up to ``within`` seconds until ``look()`` finds nothing;
    return what the last look found (empty when everything went in time)."""
    deadline = time.monotonic() + within
    found = look()
    while found and time.monotonic() < deadline:
        time.sleep(POLL)
        found = look()
    return found


def open_fd_count() -> int:
    """File descriptors open in this process (Linux: /proc/self/fd)."""
    return len(os.listdir("/proc/self/fd"))
