"""Reading one streamed NDJSON or SSE response (docs/protocol.md §2, §3): the
:class:`~riptide_sync._transport.EventSource` that :mod:`riptide_sync._http.streams` returns.

Reading strategy: the body is read **as it arrives**, with urllib3's
``HTTPResponse.read1()``, which returns whatever one socket read (or, for a chunked body,
the current chunk) delivers, instead of waiting for a fixed amount. ``iter_lines()`` and
``raw.stream(amt)`` can hold the newest line back on a push stream, because a fixed-size
read of a non-chunked body waits for ``amt`` bytes (psf/requests #2433, #3577). The bytes go
to the pure decoders of :mod:`riptide_sync.protocol`, which split lines and events.

A server that compresses anyway (despite ``Accept-Encoding: identity``, §2.2) is decoded
(``decode_content=True``).

Timeouts: ``receive(timeout)`` sets the socket timeout to the time left before its deadline
before every read. A timeout ends the source (urllib3 closes a connection whose read timed
out), so a timed-out HTTP stream cannot be resumed mid-body: open a new request.

Read-ahead (a parallel stream, :meth:`HTTPEventSource.watch`): the transport's one
:class:`~riptide_sync._http.readahead.LaneReader` thread reads the body, the consumer
decodes.

Closing: ``close()`` may run on any thread. When a reader is blocked in ``receive()``, it
shuts the socket down (``shutdown(SHUT_RDWR)``), which wakes the read at once; the reader
then closes the response on its own thread, so a socket is never closed under a running
read. Otherwise ``close()`` closes the response itself.

A little over 400 lines on purpose: reading, the drain after the summary and ``close()``
share one lock-guarded state (``_reading``/``_closed``/``_ended``), so they stay together.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable

import requests

from .. import _fork
from .._deadline import Deadline
from .._sockets import os_socket, shutdown_os_socket
from ..exceptions import StreamConnectionError, StreamTimeoutError
from ..models import StreamingResult
from .errors import translate_errors

if TYPE_CHECKING:
    from .streams import _HTTPStreamTransport

__all__ = ["HTTPEventSource", "READ_SIZE"]

logger = logging.getLogger("riptide_sync.http")

READ_SIZE = 64 * 1024
"""The most bytes one read asks for; a read returns what is available, up to this."""

DRAIN_TIMEOUT = 1.0
"""Seconds the end of a body may take after its summary before the connection is closed
instead of returned to the pool (the server ends the body right after the summary)."""

DRAIN_LIMIT = 64 * 1024
"""Bytes after the summary read at most before the connection is closed instead."""

_TIMEOUT_SLACK = 0.002
"""Seconds a read's socket timeout may differ from its deadline's remaining time."""


def _socket_of(response: requests.Response) -> Any:
    """The TCP (or TLS) socket under a streamed response (a gevent or eventlet one after
    monkey-patching), or None if it cannot be found."""
    raw = response.raw
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None and os_socket(sock) is not None:
        return sock
    # Safety net for other urllib3 layouts: http.client response -> makefile -> SocketIO.
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if sock is not None and os_socket(sock) is not None else None


class HTTPEventSource:
    """The events of one streamed crawl response; read by one consumer thread.

    Implements :class:`riptide_sync._transport.EventSource`. Created by
    :meth:`NDJSONTransport.open_crawl` / :meth:`SSETransport.open_crawl`.
    """

    def __init__(
        self,
        transport: _HTTPStreamTransport,
        response: requests.Response,
        decode: Callable[[bytes], list[StreamingResult]],
        end: Callable[[], str | None],
        idle_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._response = response
        self._raw = response.raw
        self._sock = _socket_of(response)
        self._timeout_set: float | None = -1.0
        """The timeout last given to ``settimeout()`` (-1.0: not yet set by this source)."""
        self._decode = decode
        self._end = end
        self._idle_timeout = idle_timeout
        self._stats = transport.stats
        self._events: collections.deque[StreamingResult] = collections.deque()
        self._lock = threading.Lock()
        self._reading = False
        """A read is running (guarded by _lock): close() must not close the socket under it."""
        self._closed = False
        """close() was called (guarded by _lock)."""
        self._released = False
        self._ended: str | None = None
        """Why no more bytes will be read (summary seen, EOF, error), or None while open."""
        self.summary_seen = False
        """True once the request's summary was decoded: the stream is complete."""
        self._ahead: collections.deque[bytes | BaseException] | None = None
        """Read-ahead mode (:meth:`watch`): what the reader thread read, not decoded yet
        (``b""`` is the end of the body, an exception the end of the reads)."""
        self._arrived = threading.Event()
        self._wake: Callable[[], None] | None = None
        self._ahead_done: threading.Event | None = None
        """Read-ahead mode: set once the lane's reader has stopped reading this body."""
        self._reader: threading.Thread | None = None
        """The thread that reads ahead for this source, while it does."""
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: close this process's descriptor of the response's socket
        (no shutdown: the parent's read goes on) and never touch the response again."""
        self._lock = threading.Lock()
        self._closed = self._released = True
        self._ended = "the stream was opened in the parent process, before a fork()"
        self._reader = None  # a read-ahead thread does not come along
        self._ahead_done = None
        sock, self._sock = self._sock, None
        if sock is not None:
            _fork.close_inherited_socket(sock)

    # -- read-ahead (a parallel stream) --------------------------------------------------

    def watch(self, wake: Callable[[], None]) -> bool:
        """Read the body on the transport's lane reader thread from now on, calling
        ``wake()`` after each read; the consumer decodes (:meth:`receive`), so the thread
        does one read call per chunk and no per-event work. The stream driver reads a
        parallel stream's requests so, without a pump thread. False when the body is
        already done or the transport is closed."""
        with self._lock:
            if self._closed or self._ended is not None or self._ahead_done is not None:
                return False  # (decoded events not yet returned come first, as ever)
            self._ahead = collections.deque()
            self._wake = wake
            self._ahead_done = threading.Event()
        if self._transport.lane_reader().run(self._read_ahead):
            return True
        with self._lock:
            self._ahead = self._wake = self._ahead_done = None
        return False

    def _read_ahead(self) -> None:
        """Lane reader thread: read until the end of the body (which also returns the
        connection to the pool after a summary), the first error, or close(). The
        consumer's deadline ends a stall: it closes the source, which wakes this read."""
        ahead = self._ahead
        wake = self._wake
        done = self._ahead_done
        assert ahead is not None and wake is not None and done is not None
        self._reader = threading.current_thread()
        try:
            while True:
                try:
                    chunk = self._read(Deadline(None), at_eof=False)
                except BaseException as exc:  # noqa: B902 - handed to the consumer
                    ahead.append(exc)
                    chunk = b""
                else:
                    ahead.append(chunk)
                self._arrived.set()
                wake()
                if not chunk:
                    return
        finally:
            self._reader = None
            done.set()

    def _receive_ahead(self, timeout: float | None) -> StreamingResult:
        """:meth:`receive` in read-ahead mode: decode what the reader thread read."""
        events = self._events
        ahead = self._ahead
        assert ahead is not None
        deadline = Deadline(timeout)
        while not events:
            if not ahead:
                self._arrived.clear()
                if not ahead:
                    left = deadline.remaining()
                    if left == 0.0 or not self._arrived.wait(left):
                        raise StreamTimeoutError(f"no event within {timeout:g} s")
                continue
            item = ahead.popleft()
            if isinstance(item, BaseException):
                ahead.appendleft(item)  # every later call raises it too
                raise item
            if not item:
                ahead.append(item)
                if self.summary_seen:
                    raise StreamConnectionError("the stream ended after its summary")
                leftover = self._end()
                if leftover:
                    raise StreamConnectionError(
                        f"the {self._transport.name} body ended mid-message, before the "
                        f"summary (cut after {leftover!r:.80})"
                    )
                raise StreamConnectionError(
                    f"the {self._transport.name} body ended before the summary "
                    f"(incomplete stream)"
                )
            self._take(item)
        if self.summary_seen:
            self._await_drain()
        return events.popleft()

    def _decode_ahead(self) -> bool:
        """Read-ahead mode, consumer thread: decode what the reader read until an event is
        ready; True when :meth:`receive` returns or raises at once. A read may end
        mid-line (a 64 KB document is more than one read), and then nothing is ready yet."""
        events = self._events
        ahead = self._ahead
        assert ahead is not None
        while not events and ahead:
            item = ahead[0]
            if isinstance(item, BaseException) or not item:
                return True  # receive() raises at once
            ahead.popleft()
            self._take(item)
        return bool(events)

    def _await_drain(self) -> None:
        """Read-ahead mode, the summary decoded: the body ends right after it, so let the
        reader read that end before the summary is returned; the connection is then back
        in the pool before the next request is sent."""
        done = self._ahead_done
        if done is not None and not done.wait(DRAIN_TIMEOUT):
            self.close()  # more than the end came: the connection is not reused

    # -- reading -------------------------------------------------------------------------

    def receive(self, timeout: float | None) -> StreamingResult:
        """Return the next event, reading the body as it arrives.

        Args:
            timeout: seconds to wait for the next event; None applies the idle limit of
                the transport (``max(config.timeout, MIN_IDLE_TIMEOUT)``, or no limit when
                ``config.timeout`` is None).

        Raises:
            StreamTimeoutError: nothing arrived in time; the source is then finished.
            StreamConnectionError: the body ended before the summary (docs/protocol.md §2.4:
                never a silent success), ended mid-line, the connection failed, the source
                was closed (from any thread), or ``receive`` was called after the summary.
        """
        events = self._events
        if events:
            if self.summary_seen and self._ahead is not None:
                self._await_drain()  # decoded by ready(): the summary may be among them
            return events.popleft()
        if timeout is None:
            timeout = self._idle_timeout
        if self._ahead is not None:
            return self._receive_ahead(timeout)
        deadline = Deadline(timeout)
        while not events:
            self._take(self._read(deadline))
            if self.summary_seen:
                # The request is complete: nothing after the summary matters (§2.3
                # "last line"). Read the body to its end, so the connection goes back
                # to the pool, and release it now.
                self._drain_after_summary()
        return events.popleft()

    def ready(self) -> bool:
        """True when :meth:`receive` returns (or raises) at once. In read-ahead mode it
        decodes what was read (on the consumer's thread, as receive() would): bytes that
        end mid-line are not an event yet, and a receive(0.0) then would time out."""
        if self._events:
            return True
        return bool(self._ahead) and self._decode_ahead()

    def _take(self, chunk: bytes) -> None:
        """Decode one read of the body into events (consumer thread)."""
        self._stats.bytes_received += len(chunk)
        decoded = self._decode(chunk)
        if decoded:
            self._stats.messages += len(decoded)
            for event in decoded:
                kind = event.event_type
                if kind == "metadata":
                    request_id = event.data.get("request_id")
                    if isinstance(request_id, str):
                        self._transport.session_id = request_id
                elif kind == "summary":
                    self.summary_seen = True
            self._events.extend(decoded)

    def _read(self, deadline: Deadline, *, at_eof: bool = True) -> bytes:
        """One read of whatever the body has ready (at least one byte), or raise; at the
        end of the body ``b""`` when ``at_eof`` is False, else the end is checked here."""
        with self._lock:
            if self._closed:
                raise StreamConnectionError("the stream was closed")
            if self._ended is not None:
                raise StreamConnectionError(self._ended)
            self._reading = True
        chunk = b""
        failure: BaseException | None = None
        try:
            remaining = deadline.remaining()
            if remaining == 0.0:
                raise StreamTimeoutError(f"no event within {deadline.timeout:g} s")
            if self._sock is not None:
                self._set_timeout(remaining)
            with translate_errors(f"reading the {self._transport.name} stream"):
                chunk = self._raw.read1(READ_SIZE, decode_content=True) or b""
        except BaseException as exc:  # noqa: B902 - re-raised below, after cleanup
            failure = exc
        finally:
            with self._lock:
                self._reading = False
                closed = self._closed
        if closed:
            self._release()
            raise StreamConnectionError("the stream was closed") from failure
        if failure is not None:
            self._finish(f"the stream failed earlier ({failure})")
            raise failure
        if not chunk:
            if not at_eof:
                self._finish("the stream ended")
                return chunk
            self._on_eof()
        return chunk

    def _set_timeout(self, timeout: float | None) -> None:
        """The socket's timeout for the next read. ``settimeout()`` is a system call each
        time (``ioctl(FIONBIO)``): skipped when the value already set is the same (None,
        the read-ahead thread's) or within 2 ms of it (consecutive ``receive(timeout)``
        calls, each a fresh deadline of the same length)."""
        last = self._timeout_set
        if timeout is None:
            if last is None:
                return
        elif last is not None and abs(last - timeout) < _TIMEOUT_SLACK:
            return
        assert self._sock is not None
        self._sock.settimeout(timeout)
        self._timeout_set = timeout

    def _drain_after_summary(self) -> None:
        """Read what follows the summary up to the end of the body (normally only the
        chunked body's last chunk, already sent), so urllib3 returns the connection to the
        session's pool: the next request (a chunk, a crawl) then needs no TCP connect.
        Bounded by ``DRAIN_TIMEOUT`` and ``DRAIN_LIMIT``; past either, or on any error, the
        connection is closed instead, as a stream's connection always was before."""
        with self._lock:
            if self._closed or self._ended is not None:
                return
            self._reading = True
        drained = 0
        try:
            if self._sock is not None:
                self._set_timeout(DRAIN_TIMEOUT)
            while drained <= DRAIN_LIMIT:
                chunk = self._raw.read1(READ_SIZE, decode_content=True)
                if not chunk:
                    break  # the end of the body: urllib3 has put the connection back
                drained += len(chunk)
        except Exception:  # noqa: BLE001 - nothing after the summary matters; closed below
            logger.debug("! reading past the %s summary failed", self._transport.name,
                         exc_info=True)
        finally:
            with self._lock:
                self._reading = False
        # A connection back in the pool is no longer the response's: close() leaves it open.
        self._finish("the stream ended after its summary")

    def _on_eof(self) -> None:
        """The body ended: an incomplete stream unless the summary came (§2.4)."""
        leftover = self._end()
        self._finish("the stream ended")
        if leftover:
            raise StreamConnectionError(
                f"the {self._transport.name} body ended mid-message, before the summary "
                f"(cut after {leftover!r:.80})"
            )
        raise StreamConnectionError(
            f"the {self._transport.name} body ended before the summary (incomplete stream)"
        )

    # -- closing -------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        """No more reads: remember why and release the connection."""
        self._ended = reason
        self._release()

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            self._response.close()
        except Exception:  # pragma: no cover - safety net: closing must not raise
            logger.exception("! error closing the %s response", self._transport.name)
        self._transport._forget(self)

    def close(self) -> None:
        """Stop the stream; idempotent, callable from any thread, wakes a blocked read."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            reading = self._reading
        if reading:
            # Never close a socket another thread is reading: shut it down, and let the
            # reader close the response when it wakes (see _read).
            # The OS-level shutdown, not SSLSocket.shutdown: no TLS state touched; and
            # found under gevent's and eventlet's sockets too.
            if self._sock is not None and shutdown_os_socket(self._sock):
                self._join_reader()
                return
            # Safety net: no socket found; closing is the only way to wake the reader.
        self._release()
        self._join_reader()

    def _join_reader(self) -> None:
        done = self._ahead_done
        if done is not None and self._reader is not threading.current_thread():
            done.wait(1.0)  # the lane's reader has let go of this body when close() returns
