"""What a child process must not share with its parent after ``fork()``.

Pre-fork servers (gunicorn, Celery's prefork pool, ``multiprocessing`` with the ``fork``
start method) create the client at import time and fork workers from it. A forked child
inherits copies of every socket, lock and file descriptor, but none of the threads. Using
them in the child breaks both processes: two processes writing requests on one pooled
socket read each other's responses.

Objects that hold such state register here (:func:`register`); in the child, right after
the fork, each one's ``_after_fork_in_child()`` runs (``os.register_at_fork``) and drops
what it inherited: the client its pooled connections and its lock, a WebSocket connection
its socket and spill file, an HTTP stream its socket. Those run on the child's only thread,
before any other code, so they take no lock another (parent) thread might have held at the
fork; they close file descriptors and never ``shutdown()`` a socket, which would cut the
parent's connection too. An object with a ``_before_fork()`` also has it called in the
parent just before each fork (the alarm thread of :mod:`riptide_sync._alarm` stops there
when idle, so a process that forks between crawls has no thread of ours).

Objects that only check the owner (a stream iterated in the child it was not opened in)
compare :func:`pid` with the pid they recorded. A fork from C code that runs no at-fork
hook (``os.fork()`` and ``multiprocessing`` always run them) is caught only where the client
takes its HTTP session, which compares ``os.getpid()`` itself.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

__all__ = ["register", "pid", "close_inherited_socket"]

logger = logging.getLogger("riptide_sync")

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_pid = os.getpid()


def pid() -> int:
    """The current process id as of the last ``os.fork()`` (no system call: cheap enough
    for a check on every event)."""
    return _pid


def register(obj: Any) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked while ``obj`` is alive,
    and ``obj._before_fork()`` (if it has one) in the parent just before each fork."""
    _live.add(obj)


def close_inherited_socket(sock: Any) -> None:
    """Close this process's descriptor of ``sock`` now, without ``shutdown()`` (which would
    cut the parent's connection too) and without TLS close_notify. ``detach()`` first:
    ``close()`` alone waits for every ``makefile()`` reader of the socket to close."""
    try:
        os.close(sock.detach())
    except (OSError, AttributeError, ValueError):
        pass


def _before_fork() -> None:
    for obj in list(_live):
        hook = getattr(obj, "_before_fork", None)
        if hook is None:
            continue
        try:
            hook()
        except Exception:  # pragma: no cover - safety net: never break the fork
            logger.warning("! before-fork handler of %r failed", obj, exc_info=True)


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()
    for obj in list(_live):
        try:
            obj._after_fork_in_child()
        except Exception:  # pragma: no cover - safety net: never break the child's fork
            logger.warning("! at-fork handler of %r failed", obj, exc_info=True)


if hasattr(os, "register_at_fork"):  # every POSIX system; Windows has no fork()
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
