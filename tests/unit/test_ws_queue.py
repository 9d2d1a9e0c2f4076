"""The bounded reader-to-consumer queue and its overflow policies, without sockets."""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
import threading
import time

import pytest

from riptide_sync._transport import StreamStats
from riptide_sync._ws.queue import MessageQueue
from riptide_sync.exceptions import SlowConsumerError, StreamConnectionError, StreamTimeoutError
from riptide_sync.models import StreamingResult
from riptide_sync.protocol.envelope import decode_message
from support import UNIT
from support.queue_race import drop_policy_race, summary_positions


def raw(i: int, kind: str = "result", pad: int = 0) -> bytes:
    return json.dumps({"message_type": kind, "data": {"index": i, "pad": "x" * pad}}).encode()


def event(i: int, kind: str = "result") -> StreamingResult:
    return StreamingResult(kind, {"index": i})


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path, monkeypatch):
    """Every spill file of this module goes to a directory of its own, which must be
    empty at the end of each test: no test (and no queue) leaves a file behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield
    assert glob.glob(os.path.join(str(tmp_path), "riptide-spill-*")) == []


def test_queue_spill_round_trips_in_order_across_refills() -> None:
    """Spilled records of varied sizes come back in order, across several refills."""
    stats = StreamStats()
    queue = MessageQueue(7, "spill", stats)
    sent = [raw(i, pad=(i * 37) % 5000) for i in range(500)]
    for start in range(0, 500, 13):
        assert queue.put_batch(sent[start : start + 13])
    got = [queue.get(0) for _ in range(500)]
    assert got == sent
    assert stats.spilled == 500 - 7
    assert stats.queue_high_water == 7
    queue.close()


def test_queue_spill_interleaved_with_consumer_keeps_order() -> None:
    """Producer and consumer running together never reorder or lose a message."""
    stats = StreamStats()
    queue = MessageQueue(5, "spill", stats)
    sent = [raw(i) for i in range(3000)]

    def produce() -> None:
        for start in range(0, len(sent), 11):
            queue.put_batch(sent[start : start + 11])
        queue.finish()

    thread = threading.Thread(target=produce)
    thread.start()
    got = []
    with pytest.raises(StreamConnectionError, match="ended"):
        while True:
            got.append(queue.get(5 * UNIT))
    thread.join()
    assert got == sent
    assert stats.queue_high_water <= 5


def test_queue_spill_file_truncated_when_read_and_freed_on_close() -> None:
    """The spill file is reused once read empty, and its descriptor closed by close()."""
    queue = MessageQueue(2, "spill", StreamStats())
    queue.put_batch([raw(i) for i in range(10)])
    fd = queue._spill_fd
    assert fd is not None and os.fstat(fd).st_size > 0
    for _ in range(10):
        queue.get(0)
    assert os.fstat(fd).st_size == 0
    queue.put_batch([raw(i) for i in range(10)])
    queue.close()
    assert not queue.spilling
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(StreamConnectionError, match="stream closed"):
        queue.get(0)


def test_queue_spill_file_has_no_name_while_open(tmp_path) -> None:
    """The spill file is unlinked as soon as it is open: a process killed mid-stream
    (no close()) leaves nothing in the temp dir. Failed before: the file stayed until
    close()."""
    queue = MessageQueue(2, "spill", StreamStats())
    queue.put_batch([raw(i) for i in range(10)])
    assert queue.spilling and queue.spill_path is not None
    assert not os.path.exists(queue.spill_path)
    assert glob.glob(os.path.join(str(tmp_path), "riptide-spill-*")) == []
    assert [json.loads(queue.get(0))["data"]["index"] for _ in range(10)] == list(range(10))
    queue.close()


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_queue_drop_policies_race_free_under_tiny_switch_interval(policy: str) -> None:
    """Producer and consumer at full speed, a queue of 8, a thread switch every 10 us:
    no "deque mutated during iteration", no summary ever evicted, results in order,
    every message either delivered or counted as dropped. Failed before: get() popped
    without the lock while the producer deleted by position (3 of 10 runs raised)."""
    n, every = 100_000, 1000
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        race = drop_policy_race(policy, n, every, timeout=10 * UNIT)
    finally:
        sys.setswitchinterval(old)
    assert race.end is not None and "ended" in str(race.end), race.end
    assert race.errors == []
    indices = [e.data["i"] for e in race.got]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    summaries = [e.data["i"] for e in race.got if e.event_type == "summary"]
    assert summaries == summary_positions(n, every)
    assert len(race.got) + race.dropped == n


def test_queue_drop_newest_never_drops_protocol_messages() -> None:
    """drop_newest discards incoming results but keeps an incoming summary."""
    stats = StreamStats()
    queue = MessageQueue(3, "drop_newest", stats)
    queue.put_batch([event(0), event(1), event(2)])  # the queue is now full
    queue.put_batch([event(3), event(9, "summary")])
    kinds = [queue.get(0).event_type for _ in range(3)]
    assert kinds == ["result", "result", "summary"]
    assert stats.dropped == 2


def test_queue_drop_oldest_evicts_oldest_result_only() -> None:
    """drop_oldest evicts the oldest result, skipping over queued protocol messages."""
    stats = StreamStats()
    queue = MessageQueue(3, "drop_oldest", stats)
    queue.put_batch([event(0, "metadata"), event(1), event(2)])  # the queue is now full
    queue.put_batch([event(3), event(4)])
    got = [queue.get(0) for _ in range(3)]
    assert [(e.event_type, e.data["index"]) for e in got] == [
        ("metadata", 0), ("result", 3), ("result", 4)]
    assert stats.dropped == 2


def test_queue_drop_raw_payloads_are_classified() -> None:
    """Raw payloads are decoded to decide whether they may be dropped."""
    stats = StreamStats()
    queue = MessageQueue(1, "drop_newest", stats)
    queue.put_batch([raw(0, "welcome")])  # the queue is now full
    queue.put_batch([raw(1), raw(2, "error")])
    assert [json.loads(queue.get(0))["message_type"] for _ in range(2)] == ["welcome", "error"]
    assert stats.dropped == 1


def test_queue_error_policy_raises_after_queued() -> None:
    """overflow="error" refuses a batch that finds the queue full, then raises
    SlowConsumerError after the queued messages."""
    stats = StreamStats()
    queue = MessageQueue(2, "error", stats)
    assert queue.put_batch([raw(0), raw(1)])
    assert not queue.put_batch([raw(2)])
    assert stats.queue_high_water == 2
    assert [json.loads(queue.get(0))["data"]["index"] for _ in range(2)] == [0, 1]
    with pytest.raises(SlowConsumerError, match="queue_size=2"):
        queue.get(0)


@pytest.mark.parametrize("policy", ["error", "drop_oldest", "drop_newest"])
def test_queue_batch_arriving_before_full_is_taken_whole(policy: str) -> None:
    """One large read while the consumer keeps up is not the consumer falling behind."""
    stats = StreamStats()
    queue = MessageQueue(3, policy, stats)
    assert queue.put_batch([raw(i) for i in range(10)])
    assert stats.dropped == 0 and stats.queue_high_water == 10
    assert [json.loads(queue.get(0))["data"]["index"] for _ in range(10)] == list(range(10))


def test_queue_block_policy_waits_for_room() -> None:
    """overflow="block" holds the producer until the consumer makes room."""
    queue = MessageQueue(2, "block", StreamStats())
    done = threading.Event()

    def produce() -> None:
        queue.put_batch([raw(i) for i in range(6)])
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    time.sleep(0.1 * UNIT)
    assert not done.is_set() and len(queue) == 2
    got = [json.loads(queue.get(2 * UNIT))["data"]["index"] for _ in range(6)]
    thread.join()
    assert got == list(range(6)) and done.is_set()


def test_queue_close_wakes_blocked_producer_and_consumer() -> None:
    """close() wakes both a producer blocked on a full queue and a waiting consumer."""
    full = MessageQueue(1, "block", StreamStats())
    result: list[bool] = []
    producer = threading.Thread(target=lambda: result.append(full.put_batch([raw(0), raw(1)])))
    producer.start()
    empty = MessageQueue(1, "spill", StreamStats())
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            empty.get(None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.05 * UNIT)
    started = time.monotonic()
    full.close()
    empty.close()
    producer.join(1)
    consumer.join(1)
    assert time.monotonic() - started < 0.6
    assert result == [False]
    assert isinstance(errors[0], StreamConnectionError)


def test_queue_get_timeout_raises() -> None:
    """get(timeout) raises StreamTimeoutError when nothing arrives."""
    queue = MessageQueue(1, "spill", StreamStats())
    started = time.monotonic()
    with pytest.raises(StreamTimeoutError):
        queue.get(0.05 * UNIT)
    assert time.monotonic() - started >= 0.05 * UNIT


def test_queue_rejects_bad_settings() -> None:
    """A queue size below 1 or an unknown policy is a ValueError: the client's own
    ConfigError for queue_size and overflow (one check of each setting)."""
    from riptide_sync.exceptions import ConfigError

    with pytest.raises(ValueError):
        MessageQueue(0, "spill", StreamStats())
    with pytest.raises(ValueError):
        MessageQueue(1, "lose_everything", StreamStats())
    with pytest.raises(ConfigError, match="queue_size must be an int >= 1, got 0"):
        MessageQueue(0, "spill", StreamStats())
    with pytest.raises(ConfigError, match="overflow must be one of spill, block"):
        MessageQueue(1, "lose_everything", StreamStats())


def test_queue_takes_the_policy_as_enum_or_string() -> None:
    """OverflowPolicy members and their values are the same policy."""
    from riptide_sync._config import OverflowPolicy

    for policy in OverflowPolicy:
        assert MessageQueue(1, policy, StreamStats()).overflow is policy
        assert MessageQueue(1, policy.value, StreamStats()).overflow is policy


def test_spill_file_reads_back_in_order_within_the_limit() -> None:
    """SpillFile alone: records of any size come back oldest first, at most ``limit`` at a
    time; read empty it is truncated; detach() hands over the descriptor and forgets all."""
    from riptide_sync._ws.spill import SpillFile

    spill = SpillFile()
    assert spill.fd is None and spill.detach() is None
    records = [b"x" * ((i * 7919) % 70000) for i in range(40)] + [b""]
    spill.append(records[:25])
    spill.append([event(99)])
    spill.append(records[25:])
    got: list = []
    while spill.count:
        before = len(got)
        spill.read_into(got, 6)
        assert len(got) - before <= 6
    assert got[:25] == records[:25] and got[26:] == records[25:]
    assert decode_message(got[25]) == event(99)
    fd = spill.fd
    assert fd is not None and os.fstat(fd).st_size == 0
    spill.append(records[:3])
    assert spill.detach() == fd and spill.fd is None and spill.count == 0
    os.close(fd)


def test_queue_spill_accepts_decoded_events() -> None:
    """Events decoded on the reader thread survive the spill file unchanged."""
    from riptide_sync.protocol.envelope import decode_message

    queue = MessageQueue(1, "spill", StreamStats())
    sent = [StreamingResult("result", {"index": i, "text": "é"}, "t") for i in range(4)]
    queue.put_batch(sent)
    got = [queue.get(0) for _ in range(4)]
    assert [g if isinstance(g, StreamingResult) else decode_message(g) for g in got] == sent
    queue.close()
