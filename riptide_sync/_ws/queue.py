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
    The overflow is appended to the spill file (``spill.py``: unlinked at once, truncated
    when read empty) and read back, in order, after the in-memory messages: while the file
    holds unread records every new message goes to the file too, so order is kept.
    :meth:`close` closes it. Nothing is lost; memory stays bounded (the disk does not).
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
classify for the drop policies. The policies are the members of
:class:`~riptide_sync._config.OverflowPolicy`.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Callable, Optional, Sequence

from .. import _fork
from .._config import OverflowPolicy, check_count
from .._deadline import Deadline
from .._transport import StreamStats
from ..exceptions import ConfigError, SlowConsumerError, StreamConnectionError, StreamTimeoutError
from ..models import StreamingResult
from ..protocol.envelope import decode_message
from .spill import Item, SpillFile

__all__ = ["MessageQueue", "DROPPABLE_TYPES", "Item"]

DROPPABLE_TYPES = frozenset({"result", "progress"})
"""Event types the drop policies may discard; every other type is always delivered."""

_WAIT_SLICE = 0.25
"""Longest single wait (seconds): keeps Ctrl-C and close() responsive everywhere."""


def _droppable(item: Item) -> bool:
    if not isinstance(item, StreamingResult):
        item = decode_message(item)
    return item.event_type in DROPPABLE_TYPES


_WHOLE_BATCH_POLICIES = frozenset(
    {OverflowPolicy.ERROR, OverflowPolicy.DROP_OLDEST, OverflowPolicy.DROP_NEWEST})
"""Policies that take a whole batch while the queue is not yet full (see put_batch)."""


class MessageQueue:
    """Bounded FIFO from one producer thread (the reader) to one consumer thread.

    Args:
        maxsize: messages held in memory at most (>= 1).
        overflow: an :class:`~riptide_sync._config.OverflowPolicy` or its value (see the
            module docstring).
        stats: the counters to update (``queue_high_water``, ``dropped``, ``spilled``).

    Raises:
        ConfigError (a ValueError): a bad ``maxsize`` or ``overflow``, from the same checks
            as the client's ``queue_size`` and ``overflow``.
    """

    def __init__(self, maxsize: int, overflow: OverflowPolicy | str, stats: StreamStats) -> None:
        self.maxsize = check_count("queue_size", maxsize, error=ConfigError)
        self.overflow = OverflowPolicy.coerce(overflow)
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
        self._locked_get = self.overflow.drops
        """The producer removes messages too: get() must hold the lock (module docstring)."""
        self._spill = SpillFile()
        self.listener: Optional[Callable[[], None]] = None
        """Called (reader thread, or the closing one) after messages were queued, the
        producer finished or the queue closed: a consumer watching several queues at once
        waits for it instead of in get()."""
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: close this process's descriptor of the spill file, never
        delete it (the parent is still reading it), and refuse both sides. Fresh lock: the
        parent's reader thread may have held the old one at the fork."""
        self._cond = threading.Condition(threading.Lock())
        self._closed = True
        self._mem.clear()
        fd = self._spill.detach()
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
            if not self._spill.count and (
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
        if policy is OverflowPolicy.SPILL:
            if not self._spill.count:
                room = self.maxsize - len(mem)
                mem.extend(items[:room])
                items = items[room:]
            self._spill.append(items)
            self.stats.spilled += len(items)
            return True
        if policy is OverflowPolicy.BLOCK:
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
        if policy is OverflowPolicy.ERROR:
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
            elif policy is OverflowPolicy.DROP_NEWEST:
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

    def wait_consumed(self, timeout: float) -> bool:
        """Wait until the consumer has taken every queued message and waits for more (or
        :meth:`close` was called), at most ``timeout`` s. Reader thread only: before it
        fails the connection, so what the consumer does with the messages read before a
        bad frame (e.g. answer them) goes out before the Close frame. True if it did."""
        deadline = Deadline(timeout)
        with self._cond:
            while not self._closed and (self._mem or self._spill.count
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
                if self._spill.count:
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
        return bool(self._mem) or bool(self._spill.count) or self._finished or self._closed

    def _unspill(self) -> None:
        """Move up to ``maxsize`` records from the spill file to memory. Holds the lock."""
        assert self._cond._is_owned()  # type: ignore[attr-defined]
        mem = self._mem
        self._spill.read_into(mem, self.maxsize - len(mem))
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
            fd = self._spill.detach()
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
        return self._spill.fd is not None

    @property
    def spill_path(self) -> str | None:
        """The name the spill file had when it was created (already unlinked: for logs),
        or None before the first spill and after close()."""
        return self._spill.path

    @property
    def _spill_fd(self) -> int | None:
        """The spill file's descriptor (tests check it is freed), or None."""
        return self._spill.fd

    def __len__(self) -> int:
        """Messages waiting, in memory and in the spill file."""
        return len(self._mem) + self._spill.count
