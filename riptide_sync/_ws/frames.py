"""Incremental parsing of server-to-client WebSocket frames (RFC 6455 §5), sans-I/O.

The reader thread feeds whatever ``socket.recv()`` returned into :meth:`FrameParser.feed`
and gets back the complete data messages it contained, in order; control frames are left
in :attr:`FrameParser.controls` for the caller to answer. No sockets, no clock, no threads.

Why not websocket-client's own frame reader: it issues one ``recv()`` per header, length
and payload (three syscalls per message), validates UTF-8 in pure Python, and learns a
frame's length only after buffering it, so it cannot refuse an oversized message before
reading it. The handshake, TLS, proxies and every outgoing frame still go through
websocket-client; only the inbound byte stream is parsed here.

UTF-8: a RipTide client decodes every text message as JSON, and the JSON decoder already
refuses invalid UTF-8 (the connection then closes with 1007), so by default the parser
does not validate text on the hot path. ``validate_utf8=True`` makes it check every text
message itself, incrementally across fragments, failing on the first bad fragment.
"""

from __future__ import annotations

import codecs
import collections
from typing import Deque, Final, Optional

# The RFC 6455 numbers live in codes.py; they are importable from here too, being part of
# what the parser speaks (connection.py imports them with the parser).
from .codes import CloseCode, Opcode, explain_close, is_valid_close_code, sendable_close_code

__all__ = [
    "Opcode",
    "CloseCode",
    "FrameError",
    "MessageTooBig",
    "FrameParser",
    "parse_close",
    "is_valid_close_code",
    "sendable_close_code",
    "explain_close",
]


class FrameError(Exception):
    """The byte stream broke RFC 6455; the connection must be closed with ``code``.

    ``messages`` holds the data messages the same :meth:`FrameParser.feed` call completed
    before the bad frame (the caller delivers them before failing), and the parser's
    ``controls`` still holds the control frames that came before it.
    """

    def __init__(self, message: str, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.messages: list[bytes] = []


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
_NEVER: Final = -1
"""A header byte that never matches: sends a frame kind down the slow path."""
_CONTROL_MAX: Final = 125
_LENGTH_TOP_BIT: Final = 1 << 63

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def _utf8_error(exc: UnicodeDecodeError, consumed: int, what: str) -> FrameError:
    return FrameError(
        f"the server sent {what} that is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}"
        f" at offset {consumed + exc.start}: {exc.reason})",
        CloseCode.INVALID_DATA,
    )


class FrameParser:
    """Turns a server's byte stream into messages.

    ``feed(data)`` returns the payloads (``bytes``) of the text and binary messages
    completed by ``data``, fragments joined. Control frames completed by it are appended
    to :attr:`controls` as ``(position, opcode, payload)``, ``position`` being how many of
    the returned messages came before the control frame; the caller delivers and answers
    them in that order, then clears the list. After a Close frame, :attr:`closed` is set,
    :attr:`close_code` and :attr:`close_reason` hold what it said, and any further bytes
    are ignored; after a :class:`FrameError`, too.

    Args:
        max_message_size: largest message accepted in bytes; None means no limit.
        validate_utf8: check that every text message is UTF-8, fragment by fragment
            (False: the caller's JSON decoder does it).
        record_opcodes: append the opcode of every completed message to :attr:`opcodes`
            (for a generic echo peer; a RipTide client knows every message is text).

    Raises (from ``feed``):
        MessageTooBig: a frame header announces more than ``max_message_size`` bytes,
            raised before the payload is read.
        FrameError: code 1002 for a masked server frame, reserved bits set (no extension
            is negotiated), an unknown opcode, a fragmented or oversized control frame, a
            continuation out of place, a length with its top bit set, or a Close frame
            with a 1-byte payload or an invalid code; code 1007 for a Close reason, or
            (with ``validate_utf8``) a text message, that is not UTF-8.
    """

    __slots__ = ("_limit", "_chunks", "_have", "_need", "_fragments", "_fragments_size",
                 "_fragment_text", "_decoder", "_decoded", "_partial", "_partial_text",
                 "_fast_text", "_fast_binary", "_validate", "controls", "closed", "close_code", "close_reason",
                 "payload_bytes", "opcodes")

    def __init__(
        self,
        max_message_size: int | None = None,
        *,
        validate_utf8: bool = False,
        record_opcodes: bool = False,
    ) -> None:
        self._limit = max_message_size if max_message_size is not None else 1 << 63
        self._chunks: list[bytes] = []
        """Bytes of an incomplete frame, not joined until the frame is complete."""
        self._have = 0
        self._need = 2
        """Bytes needed before parsing can progress (a header, or a whole frame)."""
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._fragment_text = False
        self._validate = validate_utf8
        self._decoder: codecs.IncrementalDecoder | None = None
        self._decoded = 0
        """Bytes of the text message the decoder has checked so far."""
        self._partial = 0
        """Payload bytes of the incomplete frame at hand the decoder has checked already."""
        self._partial_text = False
        """The incomplete frame at hand is text being checked as it arrives."""
        # The hot path handles unfragmented text/binary frames inline; the slow path
        # takes whichever kinds need more than slicing out the payload.
        self._fast_text = _NEVER if validate_utf8 or record_opcodes else _FIN_TEXT
        self._fast_binary = _NEVER if record_opcodes else _FIN_BINARY
        self.controls: list[tuple[int, int, bytes]] = []
        """Control frames completed so far, ``(position, opcode, payload)``; the caller
        clears it."""
        self.closed = False
        """A Close frame (or a protocol error) has been parsed; later bytes are ignored."""
        self.close_code: int | None = None
        """The code of the server's Close frame (1005 when it carried none), once parsed."""
        self.close_reason = ""
        self.payload_bytes = 0
        """Payload bytes of completed data messages so far."""
        self.opcodes: Optional[Deque[int]] = collections.deque() if record_opcodes else None
        """With ``record_opcodes``: the opcode of each completed message, in order."""

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the socket; return the data messages they complete, in order."""
        if self.closed:
            return []
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                # Still inside one large frame: join once when it is complete, so a
                # 64 MiB message costs one copy, not one per recv().
                if self._partial_text:
                    self._check_partial(data)
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
        else:
            buf = data
        limit = self._limit
        fast_text = self._fast_text
        fast_binary = self._fast_binary
        out: list[bytes] = []
        append = out.append
        n = len(buf)
        pos = 0
        try:
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
                        if length & _LENGTH_TOP_BIT:
                            # RFC 6455 §5.2: the most significant bit MUST be 0.
                            raise FrameError(
                                f"the server sent a frame length with its most significant"
                                f" bit set (0x{length:016x}): not a valid WebSocket frame"
                            )
                if length > limit:
                    raise MessageTooBig(length, limit)
                end = pos + head + length
                if end > n:
                    self._need = end - pos
                    if self._validate and n > pos + head:
                        self._start_partial(b0, buf[pos + head + self._partial : n])
                    break
                payload = buf[pos + head : end]
                pos = end
                if b0 == fast_text or b0 == fast_binary:
                    if self._fragments is not None:
                        raise FrameError("a new message began before the fragmented one ended")
                    self.payload_bytes += length
                    append(payload)
                    continue
                self._slow_frame(b0, payload, out)
                if self.closed:
                    pos = n
                    break
            else:
                self._need = 2
        except FrameError as exc:
            self.closed = True
            self._chunks = []
            exc.messages = out
            raise
        if pos < n:
            rest = buf[pos:] if pos else buf
            self._chunks = [rest]
            self._have = len(rest)
        else:
            self._have = 0
            self._need = 2
        return out

    def _slow_frame(self, b0: int, payload: bytes, out: list[bytes]) -> None:
        """Fragments, control frames, validated text and errors: everything the hot path
        of :meth:`feed` does not take."""
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
            if opcode == Opcode.CLOSE:
                self.close_code, self.close_reason = parse_close(payload)
                self.closed = True
            self.controls.append((len(out), opcode, payload))
            return
        if opcode == Opcode.CONT:
            if self._fragments is None:
                raise FrameError("a continuation frame without a message to continue")
            opcode = Opcode.TEXT if self._fragment_text else Opcode.BINARY
        elif opcode in (Opcode.TEXT, Opcode.BINARY):
            if self._fragments is not None:
                raise FrameError("a new message began before the fragmented one ended")
            if fin:  # a whole message: validated text, or the opcode recorded
                if opcode == Opcode.TEXT and self._validate:
                    self._check_text(payload, True)
                self._complete(opcode, payload, out)
                return
            self._fragments = []
            self._fragments_size = 0
            self._fragment_text = opcode == Opcode.TEXT
        else:
            raise FrameError(f"unknown data opcode 0x{opcode:x}")
        self._fragments_size += len(payload)
        if self._fragments_size > self._limit:
            raise MessageTooBig(self._fragments_size, self._limit)
        if self._fragment_text and self._validate:
            # Fail on the first fragment that makes the message invalid, not at its end.
            self._check_text(payload, bool(fin))
        self._fragments.append(payload)
        if fin:
            message = b"".join(self._fragments)
            self._fragments = None
            self._complete(opcode, message, out)

    def _check_text(self, payload: bytes, final: bool) -> None:
        """Validate a complete text frame's payload, less the bytes already checked while
        it was arriving; ``final``: it ends the message."""
        skip = self._partial
        self._partial = 0
        self._partial_text = False
        decoder = self._decoder
        if decoder is None:
            if final:  # a whole message in one frame: one call, no decoder state
                try:
                    codecs.utf_8_decode(payload, "strict", True)
                except UnicodeDecodeError as exc:
                    raise _utf8_error(exc, 0, "a text message") from None
                return
            decoder = self._decoder = _Utf8Decoder()
            self._decoded = 0
        self._feed_decoder(decoder, payload[skip:] if skip else payload, final)
        if final:
            self._decoder = None

    def _feed_decoder(self, decoder: codecs.IncrementalDecoder, data: bytes, final: bool) -> None:
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _utf8_error(exc, self._decoded - pending, "a text message") from None
        self._decoded += len(data)

    def _start_partial(self, b0: int, available: bytes) -> None:
        """An incomplete frame: if it is text, check what has arrived of it already, so
        that a message broken early fails at once, not when its last byte comes
        (Autobahn 6.4.3, 6.4.4)."""
        if b0 & 0x70:
            return  # refused once complete
        opcode = b0 & 0x0F
        if opcode == Opcode.TEXT:
            if self._fragments is not None:
                return  # refused once complete
        elif not (opcode == Opcode.CONT and self._fragments is not None and self._fragment_text):
            return
        if self._decoder is None:
            self._decoder = _Utf8Decoder()
            self._decoded = 0
        self._partial_text = True
        self._check_partial(available)

    def _check_partial(self, data: bytes) -> None:
        decoder = self._decoder
        assert decoder is not None
        try:
            self._feed_decoder(decoder, data, False)
        except FrameError:
            self.closed = True
            self._chunks = []
            raise
        self._partial += len(data)

    def _complete(self, opcode: int, message: bytes, out: list[bytes]) -> None:
        self.payload_bytes += len(message)
        if self.opcodes is not None:
            self.opcodes.append(opcode)
        out.append(message)


def parse_close(payload: bytes) -> tuple[int, str]:
    """Return ``(code, reason)`` of a Close frame payload (1005 when it carries none).

    Raises:
        FrameError: code 1002 for a 1-byte payload or a code no peer may send
            (:func:`is_valid_close_code`); code 1007 for a reason that is not UTF-8.
    """
    if not payload:
        return CloseCode.NO_STATUS, ""
    if len(payload) == 1:
        raise FrameError("the server sent a Close frame with a 1-byte payload (a close code"
                         " takes 2 bytes)")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise FrameError(f"the server sent close code {code}, which no peer may send"
                         " (valid: 1000-1003, 1007-1014, 3000-4999)")
    try:
        reason = codecs.utf_8_decode(payload[2:], "strict", True)[0]
    except UnicodeDecodeError as exc:
        raise _utf8_error(exc, 2, "a close reason") from None
    return code, reason
