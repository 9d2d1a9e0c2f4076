"""Waits for response headers that ``close()`` can end at once and that have an overall
deadline.

requests gives no handle on a request that is still waiting for its response headers: the
``Response`` (and ``response.raw``'s socket) exists only once they have arrived, and the
read timeout applies to each ``recv()``, so a server that dribbles one byte a second keeps
the wait alive for ever, and nothing on another thread can wake it.

:class:`WakeableAdapter` (mounted on the client's session) closes that gap. Its
connections tell the :class:`HeaderWait` of the request they carry about themselves when
the request goes out; the wait then owns a way to shut the socket down:

- at its deadline (the read timeout, counted once for the whole wait for headers): the
  blocked read fails and the request raises ``requests.exceptions.ReadTimeout`` with
  "no response headers within N s";
- on :meth:`HeaderWait.cancel` (a stream's ``close()``) or the adapter's ``close()`` (the
  client's ``close()``, which ends a blocking batch call too): the request raises
  ``requests.exceptions.ConnectionError`` ("closed while waiting for the response").

Only ``shutdown()`` is used from the other thread, never ``close()``: the socket belongs to
the blocked thread, which closes it itself as the failure unwinds. Requests through a proxy
(urllib3's ProxyManager) keep requests' own behaviour.

Usage (what the stream transports do)::

    wait = HeaderWait()
    with wait.current():                # this thread's next request reports to ``wait``
        response = session.post(url, stream=True, timeout=(5, 30))
    ...
    wait.cancel()                       # from any thread, while the post() is blocked
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any, Iterator, Optional

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool

from .. import _alarm

__all__ = ["WakeableAdapter", "HeaderWait"]

_local = threading.local()


class HeaderWait:
    """One request's wait for its response headers; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Optional[urllib3.connection.HTTPConnection] = None
        self._timer: Optional[_alarm.AlarmHandle] = None
        self._over = False
        self.cancelled = False
        """cancel() was called while (or before) the request waited."""
        self.timed_out: Optional[float] = None
        """The deadline (seconds) that passed while waiting, or None."""

    @contextlib.contextmanager
    def current(self) -> Iterator[HeaderWait]:
        """Within the block, this thread's requests report to this wait."""
        previous = getattr(_local, "wait", None)
        _local.wait = self
        try:
            yield self
        finally:
            _local.wait = previous

    # --- the adapter's side -------------------------------------------------------------

    def start(self, deadline: Optional[float]) -> None:
        """The request is about to go out: arm the overall deadline (None: none)."""
        if deadline is None:
            return
        # The process's one alarm thread, not a timer thread per request (~160 us each).
        timer = _alarm.schedule(deadline, lambda: self._expire(deadline))
        with self._lock:
            self._timer = timer

    def attach(self, conn: urllib3.connection.HTTPConnection) -> None:
        """The connection carrying the request (its socket may not be open yet)."""
        with self._lock:
            self._conn = conn
            stop = self.cancelled or self.timed_out is not None
        if stop:
            self._shutdown()

    def finish(self) -> None:
        """The headers arrived, or the request failed: nothing to wake any more."""
        with self._lock:
            self._over = True
            self._conn = None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # waits for an _expire() running at this moment

    # --- any thread -----------------------------------------------------------------------

    def cancel(self) -> None:
        """End the wait now (idempotent, any thread); the request raises."""
        with self._lock:
            if self._over:
                return
            self.cancelled = True
        self._shutdown()

    def _expire(self, deadline: float) -> None:
        with self._lock:
            if self._over:
                return
            self.timed_out = deadline
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            conn = None if self._over else self._conn
        sock = getattr(conn, "sock", None)
        if isinstance(sock, socket.socket):
            try:
                # socket.socket.shutdown, not SSLSocket's: no TLS state is touched.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def _report(conn: urllib3.connection.HTTPConnection) -> None:
    wait = getattr(_local, "wait", None)
    if isinstance(wait, HeaderWait):
        wait.attach(conn)


class _Conn(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _report(self)  # before the connect, which request() may do itself
        super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        _report(self)  # the socket now exists: a cancel that came meanwhile applies


class _TLSConn(urllib3.connection.HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _report(self)
        super().request(*args, **kwargs)

    def connect(self) -> None:
        super().connect()
        _report(self)


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _Conn


class _TLSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TLSConn


def _read_timeout(timeout: Any) -> Optional[float]:
    if isinstance(timeout, tuple):
        timeout = timeout[1] if len(timeout) > 1 else None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    return None


class WakeableAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with waits for headers that can be woken and have an overall
    deadline (the read timeout); see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._waits: set[HeaderWait] = set()
        self._waits_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def forget_waits_after_fork(self) -> None:
        """In a forked child: drop the parent's waits (their threads do not exist here)
        and make the lock anew (a parent thread may have held it at the fork)."""
        self._waits = set()
        self._waits_lock = threading.Lock()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
        **kwargs: Any,
    ) -> requests.Response:
        wait = getattr(_local, "wait", None)
        if not isinstance(wait, HeaderWait):
            wait = HeaderWait()
        deadline = _read_timeout(timeout)
        with self._waits_lock:
            self._waits.add(wait)
        try:
            with wait.current():
                wait.start(deadline)
                try:
                    return super().send(request, stream=stream, timeout=timeout, **kwargs)
                except (requests.exceptions.RequestException, OSError) as exc:
                    if wait.cancelled:
                        raise requests.exceptions.ConnectionError(
                            "closed while waiting for the response", request=request
                        ) from exc
                    if wait.timed_out is not None:
                        raise requests.exceptions.ReadTimeout(
                            f"no response headers within {wait.timed_out:g} s",
                            request=request,
                        ) from exc
                    raise
                finally:
                    wait.finish()
        finally:
            with self._waits_lock:
                self._waits.discard(wait)

    def close(self) -> None:
        """Wake every request still waiting for headers, then close the pools."""
        with self._waits_lock:
            waits = list(self._waits)
        for wait in waits:
            wait.cancel()
        super().close()
