"""The bounded hand-off between a connection's reader thread and its consumer.

The reader thread calls :meth:`MessageQueue.put_batch` once per ``recv()`` with every
message that chunk completed (one lock round trip per batch, not per message) and
:meth:`MessageQueue.finish` once when it stops. The consumer calls :meth:`get`.

Who may touch the deque without the lock: under ``spill``, ``block`` and ``error`` only the
producer adds (at the right end, under the lock) and only the consumer removes (at the left
end), and ``deque.append``/``popleft`` are atomic, so ``get()`` pops without the lock while
messages are waiting and only takes it to sleep. Under ``drop_oldest``/``drop_newest`` the
producer also removes, from the middle (it evicts a droppable message by position), so
there every removal, the consumer's included, holds the lock: a lock-free ``popleft``
between the producer's scan and its ``del`` would shift the positions (deleting the wrong
message, possibly a summary) or abort the scan ("deque mutated during iteration").

At most ``maxsize`` messages are held in memory. When a batch does not fit, the overflow
policy decides (docs/design.md §4):

``spill``
    The overflow is appended to a temporary file as length-prefixed records
    (4-byte big-endian length, then the raw frame payload) and read back, in order,
    after the in-memory messages: while the file holds unread records every new message
    goes to the file too, so order is kept. When the consumer has read the file empty,
    it is truncated to zero. The file is unlinked as soon as it is created (only its
    descriptor is kept), so nothing is left in the temp dir even by a killed process;
    :meth:`close` closes the descriptor. Nothing is lost; memory stays bounded (the disk
    does not).
``block``
    ``put_batch`` waits for room. The reader thread then stops reading, so TCP pushes
    back on the server -- but it also cannot answer the server's pings or notice a dead
    peer until the consumer catches up. Use it only when the consumer is never stalled
    for long.
``drop_oldest`` / ``drop_newest``
    The oldest queued / the incoming ``result`` or ``progress`` messages are discarded
    and counted in ``stats.dropped``. Protocol messages (``welcome``, ``metadata``,
    ``summary``, ``error``, ``pong``, ``status`` and unknown types) are never dropped:
    without them the stream cannot end correctly. If the queue holds nothing droppable,
    a protocol message is queued beyond ``maxsize`` (there are only a handful per crawl).
    These policies need the event type, so the reader thread decodes messages first.
``error``
    The reader stops; the consumer gets the messages already queued and then
    :class:`~riptide_sync.exceptions.SlowConsumerError`.

Items are ``bytes`` (a raw frame payload, decoded by the consumer) or an already decoded
:class:`~riptide_sync.models.StreamingResult`; the queue does not look inside except to
classify for the drop policies. Spilled decoded events are stored re-encoded as JSON and
come back as ``bytes`` (the consumer decodes them to an equal event).
"""

from __future__ import annotations

import collections
import json
import os
import struct
import tempfile
import threading
from typing import Any, Callable, Optional, Sequence, Union

from .. import _fork
from .._deadline import Deadline
from .._transport import StreamStats
from ..exceptions import SlowConsumerError, StreamConnectionError, StreamTimeoutError
from ..models import StreamingResult
from ..protocol.envelope import decode_message

__all__ = ["MessageQueue", "DROPPABLE_TYPES", "Item"]

Item = Union[bytes, StreamingResult]

DROPPABLE_TYPES = frozenset({"result", "progress"})
"""Event types the drop policies may discard; every other type is always delivered."""

_WAIT_SLICE = 0.25
"""Longest single wait (seconds): keeps Ctrl-C and close() responsive everywhere."""

_RECORD = struct.Struct(">I")
_SPILL_READ = 1 << 18


def _pread_at_least(fd: int, minimum: int, offset: int) -> bytes:
    """Read at least ``minimum`` bytes (more when available) at ``offset``."""
    parts = []
    got = 0
    while got < minimum:
        chunk = os.pread(fd, max(minimum - got, _SPILL_READ), offset + got)
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


def _droppable(item: Item) -> bool:
    if not isinstance(item, StreamingResult):
        item = decode_message(item)
    return item.event_type in DROPPABLE_TYPES


_WHOLE_BATCH_POLICIES = frozenset({"error", "drop_oldest", "drop_newest"})
"""Policies that take a whole batch while the queue is not yet full (see put_batch)."""


class MessageQueue:
    """Bounded FIFO from one producer thread (the reader) to one consumer thread.

    Args:
        maxsize: messages held in memory at most (>= 1).
        overflow: ``"spill"``, ``"block"``, ``"drop_oldest"``, ``"drop_newest"`` or
            ``"error"`` (see the module docstring).
        stats: the counters to update (``queue_high_water``, ``dropped``, ``spilled``).
    """

    def __init__(self, maxsize: int, overflow: str, stats: StreamStats) -> None:
        if maxsize < 1:
            raise ValueError(f"queue_size must be at least 1, got {maxsize}")
        if overflow not in ("spill", "block", "drop_oldest", "drop_newest", "error"):
            raise ValueError(f"unknown overflow policy {overflow!r}")
        self.maxsize = maxsize
        self.overflow = overflow
        self.stats = stats
        self._mem: collections.deque[Item] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._consumer_waiting = False
        self._producer_waiting = False
        self._closed = False
        """close() was called: get() raises "stream closed", put_batch() refuses."""
        self._finished = False
        """The producer will put nothing more."""
        self._terminal: BaseException | None = None
        """Raised by get() once the queued messages are consumed (None: normal end)."""
        self._locked_get = overflow in ("drop_oldest", "drop_newest")
        """The producer removes messages too: get() must hold the lock (module docstring)."""
        self._spill_fd: int | None = None
        self.spill_path: str | None = None
        """The name the spill file had when it was created (already unlinked: for logs),
        or None before the first spill and after close()."""
        self._spill_count = 0
        """Records in the spill file not read yet."""
        self.listener: Optional[Callable[[], None]] = None
        """Called (reader thread, or the closing one) after messages were queued, the
        producer finished or the queue closed: a consumer watching several queues at once
        waits for it instead of in get()."""
        self._spill_read = 0
        self._spill_write = 0
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: close this process's descriptor of the spill file, never
        delete it (the parent is still reading it), and refuse both sides. Fresh lock: the
        parent's reader thread may have held the old one at the fork."""
        self._cond = threading.Condition(threading.Lock())
        self._closed = True
        self._mem.clear()
        self._spill_count = 0
        fd, self._spill_fd, self.spill_path = self._spill_fd, None, None
        if fd is not None:
            os.close(fd)

    # --- producer side (the reader thread) ---------------------------------------------
    #
    # Under "error" and the drop policies, a batch (one recv(): up to 256 KiB of messages)
    # that arrives while the queue is not full is taken whole: one large read is not the
    # consumer falling behind. Memory is then bounded by queue_size plus one read; the
    # policy applies once the queue is full when a batch arrives.

    def put_batch(self, items: Sequence[Item]) -> bool:
        """Queue ``items`` in order, applying the overflow policy. Reader thread only.

        Returns:
            False when the queue takes nothing more (closed, or ``overflow="error"``
            tripped): the reader must stop.
        """
        with self._cond:
            if self._closed or self._finished:
                return False
            mem = self._mem
            if not self._spill_count and (
                len(mem) + len(items) <= self.maxsize
                or (len(mem) < self.maxsize and self.overflow in _WHOLE_BATCH_POLICIES)
            ):
                mem.extend(items)
                accepted = True
            else:
                accepted = self._overflow(items)
            size = len(mem)
            if size > self.stats.queue_high_water:
                self.stats.queue_high_water = size
            if not accepted:
                return False
            if self._consumer_waiting:
                self._cond.notify()
        listener = self.listener
        if listener is not None:
            listener()
        return True

    def _overflow(self, items: Sequence[Item]) -> bool:
        """Apply the policy to a batch that does not fit. Holds the lock."""
        assert self._cond._is_owned()  # type: ignore[attr-defined]
        mem = self._mem
        policy = self.overflow
        if policy == "spill":
            if not self._spill_count:
                room = self.maxsize - len(mem)
                mem.extend(items[:room])
                items = items[room:]
            self._spill(items)
            return True
        if policy == "block":
            for item in items:
                while len(mem) >= self.maxsize and not self._closed:
                    self._producer_waiting = True
                    if self._consumer_waiting:
                        self._cond.notify()
                    self._cond.wait(_WAIT_SLICE)
                    self._producer_waiting = False
                if self._closed:
                    return False
                mem.append(item)
            return True
        if policy == "error":
            room = self.maxsize - len(mem)
            mem.extend(items[:room])
            self._finish_locked(
                SlowConsumerError(
                    f"the consumer fell {self.maxsize} messages behind the server "
                    f"(queue_size={self.maxsize}, overflow='error'); the stream was stopped"
                )
            )
            return False
        for item in items:
            if len(mem) < self.maxsize:
                mem.append(item)
            elif policy == "drop_newest":
                if _droppable(item):
                    self.stats.dropped += 1
                else:
                    self._evict_droppable()
                    mem.append(item)
            else:  # drop_oldest
                if not self._evict_droppable() and _droppable(item):
                    self.stats.dropped += 1
                else:
                    mem.append(item)
        return True

    def _evict_droppable(self) -> bool:
        """Remove the oldest droppable queued message; False when there is none."""
        mem = self._mem
        for position, queued in enumerate(mem):
            if _droppable(queued):
                del mem[position]
                self.stats.dropped += 1
                return True
        return False

    def _spill(self, items: Sequence[Item]) -> None:
        if not items:
            return
        if self._spill_fd is None:
            fd, path = tempfile.mkstemp(prefix="riptide-spill-")
            try:
                os.unlink(path)  # the descriptor keeps the data; nothing outlives us
            except BaseException:
                os.close(fd)
                raise
            self._spill_fd, self.spill_path = fd, path
        parts = []
        for item in items:
            # Decoded on the reader thread: store the wire form again (slow path).
            record = item if isinstance(item, bytes) else _encode_event(item)
            parts.append(_RECORD.pack(len(record)))
            parts.append(record)
        data = b"".join(parts)
        view = memoryview(data)
        while view:
            written = os.pwrite(self._spill_fd, view, self._spill_write)
            self._spill_write += written
            view = view[written:]
        self._spill_count += len(items)
        self.stats.spilled += len(items)

    def wait_consumed(self, timeout: float) -> bool:
        """Wait until the consumer has taken every queued message and waits for more (or
        :meth:`close` was called), at most ``timeout`` s. Reader thread only: before it
        fails the connection, so what the consumer does with the messages read before a
        bad frame (e.g. answer them) goes out before the Close frame. True if it did."""
        deadline = Deadline(timeout)
        with self._cond:
            while not self._closed and (self._mem or self._spill_count
                                        or not self._consumer_waiting):
                left = deadline.remaining()
                assert left is not None
                if left <= 0:
                    return False
                self._producer_waiting = True
                try:
                    self._cond.wait(left)
                finally:
                    self._producer_waiting = False
            return True

    def finish(self, error: BaseException | None = None) -> None:
        """The producer stops; ``error`` (if any) is raised after the queued messages."""
        with self._cond:
            self._finish_locked(error)
        listener = self.listener
        if listener is not None:
            listener()

    def _finish_locked(self, error: BaseException | None) -> None:
        if not self._finished:
            self._finished = True
            self._terminal = error
        self._cond.notify_all()

    # --- consumer side -----------------------------------------------------------------

    def get(self, timeout: float | None) -> Item:
        """Return the next message, waiting at most ``timeout`` seconds (None: no limit).

        Raises:
            StreamConnectionError: :meth:`close` was called ("stream closed"), or the
                producer finished without an error and nothing is left.
            StreamTimeoutError: nothing arrived within ``timeout``.
            The producer's error (``finish(error)``), once the queue is empty.
        """
        mem = self._mem
        if mem and not self._closed and not self._locked_get:
            # Lock-free: under these policies only this thread removes (module docstring).
            item = mem.popleft()
            if self._producer_waiting:
                with self._cond:
                    self._cond.notify()
            return item
        deadline = Deadline(timeout)
        with self._cond:
            while True:
                if self._closed:
                    raise StreamConnectionError("stream closed")
                if mem:
                    item = mem.popleft()
                    if self._producer_waiting:
                        self._cond.notify()
                    return item
                if self._spill_count:
                    self._unspill()
                    continue
                if self._finished:
                    if self._terminal is not None:
                        raise self._terminal
                    raise StreamConnectionError("the connection ended")
                left = deadline.remaining()
                if left is None:
                    wait = _WAIT_SLICE
                else:
                    wait = left
                    if wait <= 0:
                        raise StreamTimeoutError(
                            f"no message from the server within {timeout:g} s"
                        )
                    wait = min(wait, _WAIT_SLICE)
                self._consumer_waiting = True
                if self._producer_waiting:
                    self._cond.notify()  # wait_consumed() is waiting for this moment
                try:
                    self._cond.wait(wait)
                finally:
                    self._consumer_waiting = False

    def ready(self) -> bool:
        """True when :meth:`get` returns (or raises) without waiting. Any thread; no lock:
        a stale answer only makes a pump hand over its batch a little early or late."""
        return bool(self._mem) or bool(self._spill_count) or self._finished or self._closed

    def _unspill(self) -> None:
        """Move up to ``maxsize`` records from the spill file to memory. Holds the lock."""
        assert self._cond._is_owned()  # type: ignore[attr-defined]
        fd = self._spill_fd
        assert fd is not None
        mem = self._mem
        count = min(self._spill_count, self.maxsize - len(mem))
        buf = b""
        buf_offset = self._spill_read  # file offset of buf[0]
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
        self._spill_read = buf_offset + i
        self._spill_count -= count
        if not self._spill_count:
            # Read empty: reuse the file from its start so the disk stays bounded too.
            os.ftruncate(fd, 0)
            self._spill_read = self._spill_write = 0
        size = len(mem)
        if size > self.stats.queue_high_water:
            self.stats.queue_high_water = size

    # --- either side ---------------------------------------------------------------------

    def close(self) -> None:
        """Wake and refuse both sides, drop the queued messages, free the spill file.

        Idempotent; any thread. A consumer blocked in :meth:`get` raises
        ``StreamConnectionError("stream closed")``.
        """
        with self._cond:
            self._closed = True
            self._mem.clear()
            self._spill_count = 0
            fd = self._spill_fd
            self._spill_fd = self.spill_path = None
            self._cond.notify_all()
        listener = self.listener
        if listener is not None:
            listener()
        if fd is not None:
            os.close(fd)  # the file was unlinked when created: this frees it

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def spilling(self) -> bool:
        """True while a spill file is open (it has no name in the file system)."""
        return self._spill_fd is not None

    def __len__(self) -> int:
        """Messages waiting, in memory and in the spill file."""
        return len(self._mem) + self._spill_count

    def debug_state(self) -> dict[str, Any]:
        """Sizes for logs and tests."""
        return {"memory": len(self._mem), "spilled_unread": self._spill_count,
                "finished": self._finished, "closed": self._closed}
