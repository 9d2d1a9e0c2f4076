"""The numbers of RFC 6455: frame opcodes and close codes, which close codes a peer may
send, and what each means in words. Pure; shared by the frame parser (``frames.py``), the
connection (``connection.py``) and the error table (``errors.py``).
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "Opcode",
    "CloseCode",
    "CLOSE_CODE_EXPLANATIONS",
    "is_valid_close_code",
    "sendable_close_code",
    "explain_close",
]


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
    TLS_HANDSHAKE = 1015


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
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failed",
}

_RESERVED_CLOSE_CODES: Final = frozenset({1004, 1005, 1006, 1015})
"""Registered codes that must never appear in a Close frame (RFC 6455 §7.4.1)."""


def is_valid_close_code(code: int) -> bool:
    """True for a code a peer may put in a Close frame (RFC 6455 §7.4): 1000-1003 and
    1007-1014 (registered with IANA), 3000-4999 (libraries, applications)."""
    if 3000 <= code <= 4999:
        return True
    return 1000 <= code <= 1014 and code not in _RESERVED_CLOSE_CODES


def sendable_close_code(code: int) -> int:
    """``code`` if it may go on the wire, else 1000: 1005, 1006 and 1015 only ever
    describe a close locally (RFC 6455 §7.4.1), and nothing outside the valid ranges is
    sent either."""
    return code if is_valid_close_code(code) else CloseCode.NORMAL


def explain_close(code: int) -> str:
    """A close code as words, e.g. ``1009 (message too big)``."""
    words = CLOSE_CODE_EXPLANATIONS.get(code)
    return f"{code} ({words})" if words else str(code)
