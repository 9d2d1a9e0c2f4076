"""Incremental parsing of server-to-client WebSocket frames (RFC 6455 §5), sans-I/O.

The reader thread feeds whatever ``socket.recv()`` returned into :meth:`FrameParser.feed`
and gets back the complete data messages it contained, in order; control frames are left
in :attr:`FrameParser.controls` for the caller to answer. No sockets, no clock, no threads.

Why not websocket-client's own frame reader: it issues one ``recv()`` per header, length
and payload (three syscalls per message), validates UTF-8 in pure Python, and learns a
frame's length only after buffering it, so it cannot refuse an oversized message before
reading it. The handshake, TLS, proxies and every outgoing frame still go through
websocket-client; only the inbound byte stream is parsed here.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["Opcode", "CloseCode", "FrameError", "MessageTooBig", "FrameParser", "parse_close"]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 §5.2)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(enum.IntEnum):
    """Close codes this client sends or reports (RFC 6455 §7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


CLOSE_CODE_EXPLANATIONS: Final[dict[int, str]] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "connection lost without a Close frame",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
}


class FrameError(Exception):
    """The byte stream broke RFC 6455; the connection must be closed with ``code``."""

    def __init__(self, message: str, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.messages: list[bytes] = []
        """Data messages completed before the violation by the same ``feed()``: the caller
        delivers them before the error (they may have arrived in one read with it)."""


class MessageTooBig(FrameError):
    """A message (all its fragments together) is larger than ``max_message_size``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the server sent a message of {size} bytes, more than max_message_size="
            f"{limit} bytes (raise max_message_size to accept it)",
            CloseCode.MESSAGE_TOO_BIG,
        )
        self.size = size
        self.limit = limit


_FIN_TEXT: Final = 0x81
_FIN_BINARY: Final = 0x82
_CONTROL_MAX: Final = 125


class FrameParser:
    """Turns a server's byte stream into messages.

    ``feed(data)`` returns the payloads (``bytes``) of the text and binary messages
    completed by ``data``, fragments joined; control frames completed by it are appended
    to :attr:`controls` as ``(opcode, payload)``; the caller answers pings and handles
    pongs and the close, then clears the list. After a Close frame, :attr:`closed` is
    set and any further bytes are ignored.

    Args:
        max_message_size: largest message accepted in bytes; None means no limit.

    Raises (from ``feed``):
        MessageTooBig: a frame header announces more than ``max_message_size`` bytes,
            raised before the payload is read.
        FrameError: a masked server frame, reserved bits set (no extension is
            negotiated), an unknown opcode, a fragmented or oversized control frame, or a
            continuation out of place.
    """

    __slots__ = ("_limit", "_chunks", "_have", "_need", "_fragments", "_fragments_size",
                 "controls", "closed", "payload_bytes")

    def __init__(self, max_message_size: int | None = None) -> None:
        self._limit = max_message_size if max_message_size is not None else 1 << 63
        self._chunks: list[bytes] = []
        """Bytes of an incomplete frame, not joined until the frame is complete."""
        self._have = 0
        self._need = 2
        """Bytes needed before parsing can progress (a header, or a whole frame)."""
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self.controls: list[tuple[int, bytes]] = []
        """Control frames completed so far, ``(opcode, payload)``; the caller clears it."""
        self.closed = False
        """A Close frame has been parsed; later bytes are ignored."""
        self.payload_bytes = 0
        """Payload bytes of completed data messages so far."""

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the socket; return the data messages they complete, in order.

        A :class:`FrameError` carries the messages completed before it in ``messages``.
        """
        out: list[bytes] = []
        try:
            self._feed(data, out)
        except FrameError as exc:
            exc.messages = out
            raise
        return out

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        if self.closed:
            return
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                # Still inside one large frame: join once when it is complete, so a
                # 64 MiB message costs one copy, not one per recv().
                return
            buf = b"".join(self._chunks)
            self._chunks = []
        else:
            buf = data
        limit = self._limit
        append = out.append
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length & 0x80:
                # RFC 6455 §5.1: a client MUST close the connection on a masked frame.
                raise FrameError("the server sent a masked frame")
            head = 2
            if length >= 126:
                if length == 126:
                    if n - pos < 4:
                        self._need = 4
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    head = 4
                else:
                    if n - pos < 10:
                        self._need = 10
                        break
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    head = 10
            if length > limit:
                raise MessageTooBig(length, limit)
            end = pos + head + length
            if end > n:
                self._need = end - pos
                break
            payload = buf[pos + head : end]
            pos = end
            if b0 == _FIN_TEXT or b0 == _FIN_BINARY:
                if self._fragments is not None:
                    raise FrameError("a new message began before the fragmented one ended")
                self.payload_bytes += length
                append(payload)
                continue
            self._slow_frame(b0, payload, append)
            if self.closed:
                pos = n
                break
        else:
            self._need = 2
        if pos < n:
            rest = buf[pos:] if pos else buf
            self._chunks = [rest]
            self._have = len(rest)
        else:
            self._have = 0
            self._need = 2

    def _slow_frame(self, b0: int, payload: bytes, append: object) -> None:
        """Fragments, control frames and errors: everything but a whole text/binary frame."""
        if b0 & 0x70:
            # RFC 6455 §5.2: nonzero RSV bits without a negotiated extension must fail.
            raise FrameError(f"reserved bits set in frame header byte 0x{b0:02x}")
        fin = b0 & 0x80
        opcode = b0 & 0x0F
        if opcode >= 0x8:
            if opcode not in (Opcode.CLOSE, Opcode.PING, Opcode.PONG):
                raise FrameError(f"unknown control opcode 0x{opcode:x}")
            if not fin or len(payload) > _CONTROL_MAX:
                raise FrameError("fragmented or oversized control frame")  # RFC 6455 §5.5
            self.controls.append((opcode, payload))
            if opcode == Opcode.CLOSE:
                self.closed = True
            return
        if opcode == Opcode.CONT:
            if self._fragments is None:
                raise FrameError("a continuation frame without a message to continue")
        elif opcode in (Opcode.TEXT, Opcode.BINARY):
            if self._fragments is not None:
                raise FrameError("a new message began before the fragmented one ended")
            self._fragments = []
            self._fragments_size = 0
        else:
            raise FrameError(f"unknown data opcode 0x{opcode:x}")
        self._fragments_size += len(payload)
        if self._fragments_size > self._limit:
            raise MessageTooBig(self._fragments_size, self._limit)
        self._fragments.append(payload)
        if fin:
            message = b"".join(self._fragments)
            self._fragments = None
            self.payload_bytes += len(message)
            append(message)  # type: ignore[operator]


def parse_close(payload: bytes) -> tuple[int, str]:
    """Return ``(code, reason)`` of a Close frame payload (1005 when it carries none)."""
    if len(payload) < 2:
        return CloseCode.NO_STATUS, ""
    code = int.from_bytes(payload[:2], "big")
    return code, payload[2:].decode("utf-8", "replace")


def explain_close(code: int) -> str:
    """A close code as words, e.g. ``1009 (message too big)``."""
    words = CLOSE_CODE_EXPLANATIONS.get(code)
    return f"{code} ({words})" if words else str(code)
