"""The bounded queue's race under a drop policy: a producer thread and the consumer (this
thread) at full speed through a ``MessageQueue`` of 8, as the reader and the consumer meet
it. Run once by tests/unit/test_ws_queue.py and in many rounds, under CPU contention, by
tests/stress/test_fault_matrix.py; each asserts on the outcome itself.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Optional

from riptide_sync._transport import StreamStats
from riptide_sync._ws.queue import MessageQueue
from riptide_sync.exceptions import StreamConnectionError
from riptide_sync.models import StreamingResult
from riptide_sync.protocol.envelope import decode_message


@dataclass
class RaceOutcome:
    got: list[StreamingResult]
    """The events the consumer received, in order (their ``data["i"]``: the position sent)."""
    dropped: int
    """``stats.dropped``: messages the policy dropped."""
    errors: list[BaseException]
    """What the producer raised (it should raise nothing)."""
    end: Optional[StreamConnectionError]
    """What ended the consumer's loop: the queue's "ended" once the producer finished;
    None never (any other exception propagates out of ``drop_policy_race``)."""


def summary_positions(n: int, every: int) -> list[int]:
    """The positions that are summaries in a race of ``n`` messages, one in ``every``."""
    return [i for i in range(n) if i % every == every - 1]


def drop_policy_race(policy: str, n: int, every: int, timeout: float) -> RaceOutcome:
    """Send ``n`` raw messages (a summary every ``every``th, the rest results) through a
    queue of 8 under ``policy``, three per ``put_batch``, while this thread takes them with
    ``get(timeout)`` (seconds) until the queue says it ended."""
    stats = StreamStats()
    queue = MessageQueue(8, policy, stats)
    # Raw payloads: the producer decodes them while it scans (slower, a wider window).
    sent = [json.dumps({"message_type": "summary" if i % every == every - 1 else "result",
                        "data": {"i": i}}).encode() for i in range(n)]
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for start in range(0, n, 3):
                queue.put_batch(sent[start : start + 3])
        except BaseException as exc:  # noqa: BLE001 - reported in the outcome
            errors.append(exc)
        finally:
            queue.finish()

    thread = threading.Thread(target=produce)
    thread.start()
    got: list[StreamingResult] = []
    end = None
    try:
        while True:
            got.append(decode_message(queue.get(timeout)))
    except StreamConnectionError as exc:
        end = exc
    finally:
        thread.join(10)
        queue.close()
    return RaceOutcome(got, stats.dropped, errors, end)
