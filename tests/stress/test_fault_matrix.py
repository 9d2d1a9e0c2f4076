"""The fault matrix under contention: every run ends with each URL exactly once, or a
named error, within a deadline (issue 12).

Faults (drop after N, silent drops, lost summaries, freeze, malformed messages, a queue
that drops under a slow consumer) x transports (WebSocket, NDJSON, SSE) x layouts (chunked
in sequence, chunked in parallel), while a CPU hog process competes for the cores and
``sys.setswitchinterval`` is tiny, several rounds each. Marker ``stress``: run by
``.ci/stages/40-stress.sh`` (``RIPTIDE_STRESS_ROUNDS`` sets the rounds, default 3).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from riptide_sync import RetryPolicy, RipTideClient
from riptide_sync.exceptions import IncompleteStreamError, RipTideError, SlowConsumerError
from riptide_sync.server import Faults
from support.leaks import threads_named

pytestmark = [
    pytest.mark.stress,
    pytest.mark.usefixtures("lanes_at_once"),  # NDJSON/SSE lanes at once, fast local server
]

ROUNDS = int(os.environ.get("RIPTIDE_STRESS_ROUNDS", "3"))
DEADLINE = float(os.environ.get("RIPTIDE_STRESS_DEADLINE", "60"))
"""Seconds one run may take at most (a hang fails the run, it does not hang CI)."""

RETRY = RetryPolicy(max_attempts=8, initial_backoff=0.02, max_backoff=0.2, jitter=0.01,
                    total_timeout=None)

FAULTS = {
    "drop_after": lambda urls: Faults(drop_after=37),
    "drop_every": lambda urls: Faults(drop_every=53),
    "silent_drops": lambda urls: Faults(drop_results_for=frozenset(urls[3::29])),
    "lost_summary": lambda urls: Faults(drop_summary_first=3, drop_results_for=frozenset(urls[5:6])),
    "freeze": lambda urls: Faults(freeze_after=41),
    "malformed": lambda urls: Faults(malformed_after=11),
    "all": lambda urls: Faults(drop_every=97, drop_results_for=frozenset(urls[9::61]),
                               drop_summary_first=2, freeze_after=23, malformed_after=17),
}

LAYOUTS = {"chunked": 1, "parallel": 3}


@pytest.fixture(scope="module")
def cpu_hog():
    """A process spinning on one core for the whole module."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield hog
    hog.kill()
    hog.wait(5)


@pytest.fixture
def tiny_switch_interval():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_with_deadline(fn, deadline: float):
    """fn() on a thread; its result or exception, or AssertionError if it outlives the
    deadline (the stream is then closed, and must end within a second)."""
    box: list = []

    def target():
        try:
            box.append(("ok", fn()))
        except BaseException as exc:  # noqa: BLE001 - inspected by the caller
            box.append(("error", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise AssertionError(f"the run did not end within {deadline:g} s")
    return box[0]


def check_run(outcome, n: int) -> str:
    """Each URL exactly once then one summary, or a named error; returns which."""
    kind, value = outcome
    if kind == "error":
        assert isinstance(value, RipTideError), f"not a riptide_sync error: {value!r}"
        if isinstance(value, (IncompleteStreamError, SlowConsumerError)):
            assert value.missing, "an incomplete stream must name what is missing"
        return type(value).__name__
    events = value
    indices = [e.data["index"] for e in events if e.event_type == "result"]
    assert len(indices) == len(set(indices)), "a URL was delivered twice"
    assert sorted(indices) == list(range(n)), f"{n - len(set(indices))} URL(s) silently missing"
    assert events[-1].event_type == "summary"
    assert sum(e.event_type == "summary" for e in events) == 1
    assert events[-1].data["total_urls"] == n
    return "complete"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("transport", ["websocket", "ndjson", "sse"])
def test_fault_matrix_each_url_once_or_a_named_error(
    make_server, cpu_hog, tiny_switch_interval, transport, fault, layout
):
    n = 240
    urls = [f"https://example.org/{fault}/{i}" for i in range(n)]
    outcomes = []
    for round_number in range(ROUNDS):
        server = make_server(synthetic_doc_size=80, ping_interval=30.0, pong_timeout=None,
                             faults=FAULTS[fault](urls))
        client = RipTideClient(server.base_url, retry=RETRY, max_urls_per_request=40,
                               parallel=LAYOUTS[layout], ping_interval=0.5, ping_timeout=1.5)
        crawl = getattr(client.streaming, f"crawl_{transport}")
        stream = crawl(urls, progress_timeout=2.0)
        try:
            outcomes.append(check_run(run_with_deadline(lambda: list(stream), DEADLINE), n))
        finally:
            stream.close()
            client.close()
    assert outcomes.count("complete") >= 1, outcomes  # the policy recovers these faults


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_websocket_queue_drops_under_a_slow_consumer(
    make_server, cpu_hog, tiny_switch_interval, policy
):
    """A queue of 8 that drops results while the consumer dawdles: the summaries come
    short and the stream resumes what was dropped; the queue never raises or loses a
    summary (the race of issue 12)."""
    n = 600
    urls = [f"https://example.org/q/{i}" for i in range(n)]
    for _ in range(ROUNDS):
        server = make_server(synthetic_doc_size=80, ping_interval=30.0, pong_timeout=None)
        client = RipTideClient(server.base_url, retry=RetryPolicy(max_attempts=30,
                               initial_backoff=0.01, max_backoff=0.05, jitter=0.0,
                               total_timeout=None), queue_size=8, overflow=policy,
                               max_urls_per_request=100, parallel=2)
        stream = client.streaming.crawl_websocket(urls, progress_timeout=3.0)

        def consume():
            events = []
            for number, event in enumerate(stream):
                events.append(event)
                if number % 50 == 0:
                    time.sleep(0.005)  # a slow consumer now and then
            return events

        try:
            check_run(run_with_deadline(consume, DEADLINE), n)
        finally:
            stream.close()
            client.close()


def test_long_chunked_ndjson_parallel_never_stalls(make_server, cpu_hog, tiny_switch_interval):
    """The 170 s stall of issue 12: a long chunked NDJSON stream (parallel=2) with a
    consumer that stalls now and then, under contention. Every run completes, and no gap
    between two events comes near the progress deadline."""
    n = 8000
    urls = [f"https://example.org/long/{i}" for i in range(n)]
    for _ in range(max(1, ROUNDS - 1)):
        server = make_server(synthetic_doc_size=40, ping_interval=30.0, pong_timeout=None)
        client = RipTideClient(server.base_url, retry=RETRY, parallel=2)
        stream = client.streaming.crawl_ndjson(urls, progress_timeout=20.0)

        def consume():
            events, worst, last, pumps = [], 0.0, time.monotonic(), 0
            for number, event in enumerate(stream):
                now = time.monotonic()
                worst = max(worst, now - last)
                last = now
                events.append(event)
                if number % 997 == 0:
                    time.sleep(0.05)
                    pumps = max(pumps, len(stream._core.fanin._pumps))
            assert worst < 10.0, f"a {worst:.1f} s gap between two events"
            # Pump threads do not pile up (one per chunk before the fix: 80 here).
            assert pumps <= 3, f"{pumps} pump threads kept"
            return events

        try:
            assert check_run(run_with_deadline(consume, DEADLINE * 2), n) == "complete"
            assert not threads_named("riptide-stream-pump")
        finally:
            stream.close()
            client.close()


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_queue_drop_policies_race_free_many_rounds(cpu_hog, tiny_switch_interval, policy):
    """MessageQueue alone, producer and consumer at full speed, a queue of 8, many rounds:
    never "deque mutated during iteration", never a summary evicted, order kept."""
    from support.queue_race import drop_policy_race, summary_positions

    n, every = 50_000, 500
    for _ in range(ROUNDS * 2):
        race = drop_policy_race(policy, n, every, timeout=10)
        assert race.errors == []
        indices = [e.data["i"] for e in race.got]
        assert indices == sorted(indices)
        assert [e.data["i"] for e in race.got if e.event_type == "summary"] == summary_positions(n, every)
        assert len(race.got) + race.dropped == n
