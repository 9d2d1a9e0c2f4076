"""One WebSocket connection: the reader thread, keepalive, sends, close (the handshake
is in :mod:`riptide_sync._ws.handshake`).

Over ~400 lines on purpose: the reader thread, the senders and ``close()`` share one
connection's state (socket, close lock, the one Close frame); split, each part would reach
into the others' attributes.

::

    consumer thread                          reader thread "riptide-ws-reader"
    ---------------                          ---------------------------------
    Connection.receive() <- MessageQueue <-  recv(256 KiB) -> FrameParser -> put_batch()
    Connection.send_text() ----------------> socket <- pong (server pings, at once)
                                                      <- ping (every ping_interval)

The reader thread owns reading; any thread may send (websocket-client's send lock
serialises frames). The reader reads whatever the consumer does, so server pings are
answered even while the consumer is stalled (docs/design.md §4), except under
``overflow="block"``, where a full queue stops the reader on purpose.

Keepalive (docs/protocol.md §1.8): the client pings every ``ping_interval``, but the real
server answers nothing during a crawl, so a pong is not required. Any inbound byte is a
sign of life; silence for ``ping_interval + ping_timeout`` is a dead peer and ends the
stream with :class:`~riptide_sync.exceptions.KeepaliveTimeoutError`. ``ping_interval``
None disables both the pings and the detection.

Decoding (``decode_frame``) happens on the consumer thread by default: measured over
loopback with the GIL shared, it was as fast or faster end to end, and it keeps raw
payloads in the queue so the spill file needs no re-encoding. The drop policies need
event types, so under them the reader decodes.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

import websocket

from .. import _fork
from .._config import ClientConfig
from .._transport import StreamStats
from ..exceptions import KeepaliveTimeoutError, StreamConnectionError, StreamingError
from ..models import StreamingResult
from ..protocol.envelope import InvalidUTF8, decode_frame
from . import errors
from .frames import CloseCode, FrameError, FrameParser, Opcode, explain_close, sendable_close_code
from .handshake import handshake
from .queue import MessageQueue

__all__ = ["Connection", "State", "RECV_SIZE"]

logger = logging.getLogger("riptide_sync.ws")

RECV_SIZE = 1 << 18
"""Bytes asked of each ``recv()``: one call usually carries many messages."""

_TICK_MAX = 0.25
"""Longest the reader sleeps in ``recv()`` before checking keepalive and close (s)."""

_CLOSE_LOCK_TIMEOUT = 0.1
_CLOSE_ECHO_TIMEOUT = 0.25
_JOIN_TIMEOUT = 0.5
_FAIL_GRACE = 1.0
"""Longest a protocol error waits for the consumer to take the messages before it (s)."""


class State:
    """Connection states (one way: CONNECTING -> OPEN -> CLOSING -> CLOSED)."""

    CONNECTING = "CONNECTING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


class Connection:
    """One connected WebSocket with its reader thread and bounded queue.

    ``Connection(config, stats, url).connect()`` performs the handshake (deadline
    ``config.connect_timeout``), starts the reader and waits for the ``welcome``
    (deadline ``config.timeout``); :meth:`receive` then returns the events in order,
    the welcome first. :meth:`close` ends everything within about a second.

    Args:
        config: the client settings (headers, TLS, proxy, keepalive, queue, limits).
        stats: counters updated by the reader thread.
        url: the ``ws://`` or ``wss://`` URL.
        decode_on_reader: decode messages on the reader thread (None: only when the
            overflow policy needs event types, i.e. ``drop_*``).
    """

    def __init__(
        self,
        config: ClientConfig,
        stats: StreamStats,
        url: str,
        *,
        decode_on_reader: bool | None = None,
    ) -> None:
        self.config = config
        self.stats = stats
        self.url = url
        self.state = State.CONNECTING
        self.session_id: str | None = None
        """The server's session id from its welcome, or None."""
        self.welcome: StreamingResult | None = None
        """The ``welcome`` event, once read."""
        self.welcome_delivered = False
        """The transport already handed the welcome to a crawl's consumer."""
        self.close_code: int | None = None
        """The close code received from the server, or None (no Close frame)."""
        self._handshaking: websocket.WebSocket | None = None
        if decode_on_reader is None:
            decode_on_reader = config.overflow.drops
        self._decode_on_reader = decode_on_reader
        self.queue = MessageQueue(config.queue_size, config.overflow, stats)
        self._pushback: list[StreamingResult] = []
        self._ws: websocket.WebSocket | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._close_lock = threading.Lock()
        self._closing = False
        self._close_sent = False
        self._ping_sent: dict[bytes, float] = {}
        self._debug = logger.isEnabledFor(logging.DEBUG)
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: the reader thread did not come along, and the socket is the
        parent's. Close this process's descriptor only (no shutdown, no Close frame: the
        parent's connection goes on); the queue handles its own spill file."""
        self._closing = True
        self.state = State.CLOSED
        self._close_lock = threading.Lock()
        self._reader = None
        for sock in (self._sock, getattr(self._handshaking, "sock", None)):
            if sock is not None:
                _fork.close_inherited_socket(sock)
        self._sock = None

    # --- opening -------------------------------------------------------------------------

    def connect(self, *, read_welcome: bool = True) -> None:
        """Handshake, start the reader thread, read the welcome.

        Args:
            read_welcome: wait for the welcome here (deadline ``config.timeout``). False
                returns right after the handshake, so a request can be sent at once (the
                server reads it after sending its welcome, docs/protocol.md §1.3); the welcome
                is then the first event :meth:`receive` returns, and is noted there.

        Raises:
            AuthenticationError, RateLimitError, NotFoundError, ServerError, APIError:
                the server refused the handshake (with its status and body).
            StreamConnectionError: DNS, refused, reset, TLS or proxy failure.
            StreamTimeoutError: no handshake within ``connect_timeout``, or no welcome
                within ``timeout``.
        """
        config = self.config
        try:
            ws = handshake(config, self.url, track=self._track_handshake,
                           closing=lambda: self._closing)
        except BaseException:
            self.state = State.CLOSED
            raise
        with self._close_lock:
            if self._closing:  # close() was called during the handshake
                ws.shutdown()  # type: ignore[no-untyped-call]
                self.state = State.CLOSED
                raise StreamConnectionError("stream closed")
            self._ws = ws
            sock = ws.sock
            assert sock is not None
            self._sock = sock
            sock.settimeout(self._tick())
            self.state = State.OPEN
            self._reader = threading.Thread(
                target=self._run, name="riptide-ws-reader", daemon=True
            )
            self._reader.start()
        if not read_welcome:
            return
        try:
            first = self.receive(config.timeout)
        except BaseException:
            self.close()
            raise
        if first.event_type != "welcome":
            # Tolerant: a server without a welcome still works; keep the event.
            self._pushback.append(first)

    def _track_handshake(self, ws: websocket.WebSocket | None) -> None:
        self._handshaking = ws  # close() from another thread shuts its socket down

    def _note_welcome(self, event: StreamingResult) -> None:
        """Keep the connection's welcome and session id (the first welcome only)."""
        self.welcome = event
        session = event.data.get("session_id")
        self.session_id = session if isinstance(session, str) else None
        if self._debug:
            logger.debug("< welcome session %s", self.session_id)

    def _tick(self) -> float:
        """The reader's recv() timeout: short enough for keepalive checks to be timely."""
        interval, grace = self.config.ping_interval, self.config.ping_timeout
        candidates = [_TICK_MAX]
        if interval is not None:
            candidates.append(interval / 4)
            if grace is not None:
                candidates.append(grace / 4)
        return max(0.01, min(candidates))

    # --- the reader thread -----------------------------------------------------------------

    def _new_parser(self) -> FrameParser:
        """The reader's frame parser (a test peer may ask it for more, e.g. opcodes)."""
        return FrameParser(self.config.max_message_size)

    def _run(self) -> None:
        """Read frames until the connection ends; hand messages to the queue."""
        sock = self._sock
        assert sock is not None
        recv = sock.recv
        parser = self._new_parser()
        feed = parser.feed
        put = self._put
        stats = self.stats
        debug = self._debug
        interval = self.config.ping_interval
        grace = self.config.ping_timeout
        dead_after = interval + grace if interval is not None and grace is not None else None
        now = time.monotonic()
        last_rx = now
        next_ping = now + interval if interval is not None else float("inf")
        error: BaseException | None = None
        counted = 0
        try:
            while True:
                try:
                    data = recv(RECV_SIZE)
                except (socket.timeout, TimeoutError):
                    if self._closing:
                        break
                    now = time.monotonic()
                    if dead_after is not None and now - last_rx > dead_after:
                        raise KeepaliveTimeoutError(
                            f"nothing arrived from {self.url} for {now - last_rx:.1f} s "
                            f"(ping_interval + ping_timeout = {dead_after:g} s): the "
                            f"peer is unresponsive"
                        ) from None
                    if now >= next_ping:
                        self._send_ping(now)
                        next_ping = now + interval  # type: ignore[operator]
                    continue
                if not data:
                    if self._closing:
                        break
                    raise StreamConnectionError(
                        f"the server closed the connection {self._closed_how()}"
                    )
                try:
                    messages = feed(data)
                except FrameError as exc:
                    # What the same read completed before the bad frame still counts.
                    messages = exc.messages
                    exc.messages = []
                    self._count(messages, parser.payload_bytes - counted)
                    self._dispatch(messages, parser)
                    raise
                if messages:
                    stats.messages += len(messages)
                    stats.bytes_received += parser.payload_bytes - counted
                    counted = parser.payload_bytes
                    if debug:
                        for message in messages:
                            logger.debug("< %.200r", message)
                if parser.controls:
                    if self._dispatch(messages, parser):
                        break
                elif messages and put(messages):
                    break
                # Any inbound byte is a sign of life (docs/protocol.md §1.8); this also
                # restarts the clock after put() blocked under overflow="block".
                now = time.monotonic()
                last_rx = now
                if now >= next_ping:
                    self._send_ping(now)
                    next_ping = now + interval  # type: ignore[operator]
        except FrameError as exc:
            # Fail the connection once the consumer has had the messages read before
            # the bad frame (bounded: a stalled consumer delays the Close by at most
            # _FAIL_GRACE; close() wakes it at once).
            self.queue.wait_consumed(_FAIL_GRACE)
            self._send_close(exc.code, str(exc)[:100])
            error = errors.for_consumer(exc, url=self.url, during="reading from")
        except StreamingError as exc:
            error = exc
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            if not self._closing:
                error = errors.for_consumer(exc, url=self.url, during="reading from")
        finally:
            if error is not None and self._closing:
                error = None  # close() was called: the consumer sees "stream closed"
            if error is not None:
                logger.debug("! %s", error)
            self.queue.finish(error)
            self._teardown()

    def _count(self, messages: list[bytes], size: int) -> None:
        if messages:
            self.stats.messages += len(messages)
            self.stats.bytes_received += size

    def _put(self, messages: list[bytes]) -> bool:
        """Queue a batch of messages (decoded first under the drop policies). Returns True
        when the reader must stop (queue closed, or overflow="error" tripped).

        Raises:
            FrameError: code 1007, a text message that is not UTF-8 (decoding on the
                reader); the messages before it are queued first.
        """
        queue = self.queue
        if self._decode_on_reader:
            events: list[StreamingResult] = []
            for message in messages:
                try:
                    events.append(decode_frame(message))
                except InvalidUTF8 as exc:
                    if events:
                        queue.put_batch(events)
                    raise FrameError(str(exc), CloseCode.INVALID_DATA) from exc
            accepted = queue.put_batch(events)
        else:
            accepted = queue.put_batch(messages)
        if accepted:
            return False
        if not self._closing and not queue.closed:
            # overflow="error" tripped: stop the server too.
            self._send_close(CloseCode.NORMAL, "slow consumer")
        return True

    def _dispatch(self, messages: list[bytes], parser: FrameParser) -> bool:
        """Deliver messages and answer control frames in the order they arrived, so a
        ping between two messages is answered before the second one is queued. Returns
        True when the reader must stop."""
        controls = parser.controls
        parser.controls = []
        start = 0
        for position, opcode, payload in controls:
            if position > start:
                if self._put(messages[start:position]):
                    return True
                start = position
            if self._handle_control(opcode, payload, parser):
                return True
        if start < len(messages):
            return self._put(messages[start:] if start else messages)
        return False

    def _closed_how(self) -> str:
        if self.close_code is not None:
            return f"with code {explain_close(self.close_code)}"
        return f"without a Close frame (code {explain_close(CloseCode.ABNORMAL)})"

    def _handle_control(self, opcode: int, payload: bytes, parser: FrameParser) -> bool:
        """Answer a ping, time a pong, echo a close. Returns True when the peer closed."""
        if opcode == Opcode.PING:
            if self._debug:
                logger.debug("< ping %r; > pong", payload)
            ws = self._ws
            assert ws is not None
            ws.pong(payload)  # RFC 6455 §5.5.3: answer as soon as practical
        elif opcode == Opcode.PONG:
            sent = self._ping_sent.pop(payload, None)
            if sent is not None:
                self.stats.last_rtt_ms = (time.monotonic() - sent) * 1000.0
                self._ping_sent.clear()  # older unanswered pings are moot now
            if self._debug:
                logger.debug("< pong %r", payload)
        elif opcode == Opcode.CLOSE:
            # The parser validated the code and the reason (1002 / 1007 otherwise).
            code = parser.close_code
            assert code is not None
            reason = parser.close_reason
            self.close_code = code
            if self._debug:
                logger.debug("< close %s %r", explain_close(code), reason)
            # RFC 6455 §5.5.1: echo the status code (1005, "none", is answered with 1000).
            self._send_close(sendable_close_code(code), "")
            if not self._closing:
                raise StreamConnectionError(
                    f"the server closed the connection with code {explain_close(code)}"
                    + (f": {reason}" if reason else "")
                )
            return True
        return False

    def _send_ping(self, now: float) -> None:
        payload = str(int(time.time() * 1000)).encode()  # same shape as the server's (§1.8)
        if len(self._ping_sent) > 16:
            self._ping_sent.clear()  # the real server leaves pings unanswered mid-crawl
        self._ping_sent[payload] = now
        if self._debug:
            logger.debug("> ping %r", payload)
        assert self._ws is not None
        self._ws.ping(payload)

    def _send_close(self, code: int, reason: str) -> None:
        """Best effort: a Close frame must never block or raise on the way out."""
        ws = self._ws
        if ws is None or self._close_sent or not ws.lock.acquire(timeout=_CLOSE_LOCK_TIMEOUT):
            return
        try:
            sock = ws.sock
            if sock is None or self._close_sent:
                return
            self._close_sent = True  # one Close frame per connection (RFC 6455 §5.5.1)
            # 1005/1006/1015 describe a close locally and never go on the wire (§7.4.1).
            code = sendable_close_code(code)
            reason_bytes = reason.encode("utf-8")[:120].decode("utf-8", "ignore").encode("utf-8")
            frame = websocket.ABNF.create_frame(
                code.to_bytes(2, "big") + reason_bytes, websocket.ABNF.OPCODE_CLOSE
            ).format()
            if self._debug:
                logger.debug("> close %s", explain_close(code))
            if isinstance(sock, ssl.SSLSocket):
                sock.send(frame)  # bounded by the socket's short timeout
            else:
                sock.send(frame, socket.MSG_DONTWAIT)
        except (OSError, ValueError):
            pass
        finally:
            ws.lock.release()

    def _teardown(self) -> None:
        """Close the socket once (reader thread at exit, or close()). Never raises."""
        ws = self._ws
        if ws is None:
            return
        got = ws.lock.acquire(timeout=_JOIN_TIMEOUT)
        try:
            sock = ws.sock
            ws.sock = None
            ws.connected = False
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        finally:
            if got:
                ws.lock.release()
        self.state = State.CLOSED

    # --- the consumer's side -----------------------------------------------------------------

    def receive(self, timeout: float | None) -> StreamingResult:
        """Return the next event (decoded), waiting at most ``timeout`` s (None: no limit).

        Raises:
            StreamConnectionError: closed by :meth:`close` ("stream closed") or by the
                server (after every queued event was returned).
            StreamTimeoutError: nothing within ``timeout``.
            KeepaliveTimeoutError, SlowConsumerError, ProtocolViolationError: from the
                reader thread, chained to their cause.
        """
        if self._pushback:
            return self._pushback.pop(0)
        item = self.queue.get(timeout)
        if item.__class__ is bytes:  # the hot path: a raw payload, decoded here
            try:
                event = decode_frame(item)
            except InvalidUTF8 as exc:
                raise self._invalid_text(exc) from exc
        else:
            assert isinstance(item, StreamingResult)
            event = item
        if self.welcome is None and event.event_type == "welcome":
            self._note_welcome(event)
        return event

    def ready(self) -> bool:
        """True when :meth:`receive` returns at once (a message is queued or held back)."""
        return bool(self._pushback) or self.queue.ready()

    def _invalid_text(self, exc: InvalidUTF8) -> StreamConnectionError:
        """A text message that is not UTF-8 (found by the consumer's JSON decoder): close
        with 1007 (RFC 6455 §8.1) and end the stream with a resumable error."""
        self._send_close(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
        self.close()
        error = StreamConnectionError(f"{self.url}: {exc}; closed the connection with code "
                                      f"{explain_close(CloseCode.INVALID_DATA)}")
        error.close_code = CloseCode.INVALID_DATA  # type: ignore[attr-defined]
        return error

    def send_text(self, text: str) -> None:
        """Send one text frame (any thread).

        Raises:
            StreamConnectionError: the connection is closed or the send failed.
            StreamTimeoutError: the socket did not accept the frame in time.
        """
        ws = self._ws
        if ws is None or self.state != State.OPEN:
            raise StreamConnectionError(f"the connection to {self.url} is closed")
        if self._debug:
            logger.debug("> %.200s", text)
        with errors.translate(url=self.url, during="sending to"):
            ws.send(text)

    def reader_stopped(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the reader thread to end; True once it has (its
        end, error included, is then queued for :meth:`receive`)."""
        reader = self._reader
        if reader is None or reader is threading.current_thread():
            return False
        reader.join(timeout)
        return not reader.is_alive()

    @property
    def healthy(self) -> bool:
        """True while open and the reader is running (a new request may be sent)."""
        reader = self._reader
        return self.state == State.OPEN and reader is not None and reader.is_alive() and not self._closing

    # --- closing -----------------------------------------------------------------------------

    def close(self, *, await_echo: bool = True) -> None:
        """Close: Close frame (best effort), wake the consumer, join the reader, delete
        the spill file. Idempotent, any thread, done within about a second even if the
        peer is frozen (a socket shutdown unblocks the reader).

        ``await_echo`` False skips the short wait for the peer's Close: for a crawl
        abandoned midway, which the real server does not read before its summary
        (docs/protocol.md §1.8), so no echo can come."""
        with self._close_lock:
            # Not an early return when already closing: a close() racing with
            # connect() must still release what connect() built meanwhile.
            self._closing = True
        if self.state == State.OPEN:
            self.state = State.CLOSING
        handshaking = self._handshaking
        if handshaking is not None and handshaking.sock is not None:
            # A handshake in progress on another thread (a frozen server): unblock it.
            try:
                handshaking.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.queue.close()
        reader = self._reader
        if reader is not None and reader.is_alive() and reader is not threading.current_thread():
            self._send_close(CloseCode.NORMAL, "")
            if await_echo:
                reader.join(_CLOSE_ECHO_TIMEOUT)  # the reader stops at the echoed Close / EOF
            if reader.is_alive():
                self._shutdown_socket()
                reader.join(_JOIN_TIMEOUT)
            if reader.is_alive():  # pragma: no cover - safety net
                logger.error("! the reader thread of %s did not stop", self.url)
        self._teardown()

    def _shutdown_socket(self) -> None:
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<Connection {self.url} {self.state} session={self.session_id}>"

