"""One small helper for the deadlines the transports count down.

A wait that may be woken several times (a condition variable, a socket read in slices)
must not restart its timeout at each wake: it counts down to one point in time.
``Deadline(timeout)`` is that point on the monotonic clock; ``None`` means no deadline.
"""

from __future__ import annotations

import time
from typing import Optional

__all__ = ["Deadline"]


class Deadline:
    """``timeout`` seconds from now on the monotonic clock; ``timeout=None``: never.

    ``timeout`` is kept for messages ("no event within 5 s").
    """

    __slots__ = ("timeout", "_at")

    def __init__(self, timeout: Optional[float]) -> None:
        self.timeout = timeout
        self._at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> Optional[float]:
        """Seconds left (0.0 once passed, never negative); None: no deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed (never for ``timeout=None``)."""
        return self._at is not None and time.monotonic() >= self._at

    def __repr__(self) -> str:
        if self._at is None:
            return "Deadline(None)"
        return f"Deadline({self.timeout!r}, remaining={self.remaining():.3f})"
