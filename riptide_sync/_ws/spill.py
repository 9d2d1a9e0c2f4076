"""The spill file of the ``spill`` overflow policy (docs/architecture.md §4): what the
queue cannot hold in memory, appended to a temporary file and read back in order.

Records are length-prefixed: a 4-byte big-endian length, then the raw frame payload.
The file is unlinked as soon as it is created (only its descriptor is kept), so nothing is
left in the temp dir, even by a killed process; once read empty it is truncated to zero,
so the disk stays bounded too. Not thread-safe: :class:`~riptide_sync._ws.queue.MessageQueue`
calls it under its lock.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import MutableSequence, Optional, Sequence, Union

from ..models import StreamingResult

__all__ = ["SpillFile", "Item"]

Item = Union[bytes, StreamingResult]
"""What the queue holds: a raw frame payload (decoded by the consumer) or an event the
reader thread already decoded (the drop policies need its type)."""

_RECORD = struct.Struct(">I")
_READ_SIZE = 1 << 18
"""Bytes asked of one pread() when refilling memory (more than one record usually)."""


def _pread_at_least(fd: int, minimum: int, offset: int) -> bytes:
    """Read at least ``minimum`` bytes (more when available) at ``offset``."""
    parts = []
    got = 0
    while got < minimum:
        chunk = os.pread(fd, max(minimum - got, _READ_SIZE), offset + got)
        if not chunk:
            raise EOFError("the spill file is shorter than its records")  # safety net
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _encode_event(event: StreamingResult) -> bytes:
    """The wire form of a decoded event; ``decode_message`` gives back an equal event."""
    return json.dumps(
        {"message_type": event.event_type, "data": event.data, "timestamp": event.timestamp},
        ensure_ascii=False, separators=(",", ":"),
    ).encode("utf-8")


class SpillFile:
    """An append-at-the-end, read-from-the-front file of records; opened on first append.

    Decoded events are stored re-encoded as JSON and come back as ``bytes`` (the consumer
    decodes them to an equal event).
    """

    def __init__(self) -> None:
        self.fd: Optional[int] = None
        """The descriptor, or None before the first append and after :meth:`detach`."""
        self.path: Optional[str] = None
        """The name the file had when it was created (already unlinked: for logs), or None."""
        self.count = 0
        """Records written and not read yet."""
        self._read = 0  # file offset of the next record to read
        self._write = 0  # file offset of the end

    def append(self, items: Sequence[Item]) -> None:
        """Write ``items`` at the end, in order (creating the file the first time)."""
        if not items:
            return
        if self.fd is None:
            fd, path = tempfile.mkstemp(prefix="riptide-spill-")
            try:
                os.unlink(path)  # the descriptor keeps the data; nothing outlives us
            except BaseException:
                os.close(fd)
                raise
            self.fd, self.path = fd, path
        parts = []
        for item in items:
            # Decoded on the reader thread: store the wire form again (slow path).
            record = item if isinstance(item, bytes) else _encode_event(item)
            parts.append(_RECORD.pack(len(record)))
            parts.append(record)
        view = memoryview(b"".join(parts))
        while view:
            written = os.pwrite(self.fd, view, self._write)
            self._write += written
            view = view[written:]
        self.count += len(items)

    def read_into(self, mem: MutableSequence[Item], limit: int) -> None:
        """Move up to ``limit`` records, oldest first, to the end of ``mem``."""
        fd = self.fd
        assert fd is not None
        count = min(self.count, limit)
        buf = b""
        buf_offset = self._read  # file offset of buf[0]
        i = 0
        for _ in range(count):
            if len(buf) - i < 4:
                buf = buf[i:] + _pread_at_least(fd, 4 - (len(buf) - i), buf_offset + len(buf))
                buf_offset += i
                i = 0
            (size,) = _RECORD.unpack_from(buf, i)
            end = i + 4 + size
            if end > len(buf):
                buf = buf[i:] + _pread_at_least(fd, end - len(buf), buf_offset + len(buf))
                buf_offset += i
                end -= i
                i = 0
            mem.append(buf[i + 4 : end])
            i = end
        self._read = buf_offset + i
        self.count -= count
        if not self.count:
            # Read empty: reuse the file from its start so the disk stays bounded too.
            os.ftruncate(fd, 0)
            self._read = self._write = 0

    def detach(self) -> Optional[int]:
        """Forget the file and every unread record; return the descriptor for the caller
        to close (closing it frees the file: it has no name), or None if none was open."""
        fd, self.fd, self.path = self.fd, None, None
        self.count = 0
        self._read = self._write = 0
        return fd
