"""Exit codes, and the one line each kind of error becomes on standard error.

Kinds are told apart by exception type along the ``from`` chain (the SDK chains every
foreign exception it translates, ``riptide_sync.exceptions``), never by reading messages:
a proxy's 502 whose body says "connection refused" is the proxy answering, not a server
that is not there.
"""

from __future__ import annotations

from ..exceptions import AuthenticationError, RipTideError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "caused_by",
    "error_line",
    "refused",
]

EXIT_OK = 0
"""Every URL succeeded; the server answered as asked."""
EXIT_FAILED = 1
"""Some URL failed, the stream was incomplete, or the server could not be used."""
EXIT_USAGE = 2
"""A usage error, a bad option, or a bad URL in the input."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT, as a shell reports it)."""


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or an exception in its chain is a ``kind``.

    The chain is the one a traceback shows: ``__cause__``, else ``__context__`` unless
    suppressed (``requests`` raises its errors while handling urllib3's, without ``from``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def refused(exc: BaseException) -> bool:
    """Whether nothing listened where the client connected (the OS refused the connection)."""
    return caused_by(exc, ConnectionRefusedError)


def error_line(exc: BaseException, base_url: str | None = None) -> str:
    """Say what went wrong in one line, with a hint when one helps.

    Args:
        exc: the error.
        base_url: the server the command used, named when the connection was refused;
            None says "the server".
    """
    text = " ".join(str(exc).split())
    if caused_by(exc, AuthenticationError):
        return f"{text}; pass --api-key or set RIPTIDE_API_KEY"
    if refused(exc):
        where = base_url or "the server"
        return f"cannot connect to {where}: connection refused (is a server running? try 'riptide-sync serve')"
    if isinstance(exc, RipTideError):
        return text
    return f"{type(exc).__name__}: {text}"
