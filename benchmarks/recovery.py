"""Recovery time: 2,000 URLs through a server whose faults fire again and again.

``python -m benchmarks.recovery [--urls 2000] [--transports websocket,ndjson,sse] [--json]``

The local server (synthetic documents, in this process) drops connections every N results,
silently drops some results, skips the first summaries, freezes its first connection of
each transport mid-request and sends a malformed message on every connection. The client
runs at its default settings (retry policy, progress deadline, summary grace, parallel=2).
Without faults the same crawl takes well under a second, so the figure is the time the
client spends recovering.

Where the time goes, per run:

- ``deadlines``: waits that ended in a timeout (a stall or a lost summary detected by the
  progress deadline or the summary grace), measured around the driver's wait for the next
  event;
- ``backoff``: the retry policy's sleeps;
- ``rest``: streaming, connecting and re-planning.

Every run must still deliver each URL exactly once; the benchmark fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Callable

from riptide_sync import RetryPolicy, RipTideClient
from riptide_sync._driver import StreamCore as _StreamCore
from riptide_sync._fanin import FanIn
from riptide_sync.exceptions import StreamTimeoutError
from riptide_sync.server import Faults, ServerConfig, serve_in_thread

TRANSPORTS = ("websocket", "ndjson", "sse")


def faults_for(urls: list[str]) -> Faults:
    """Faults that fire repeatedly over a 2,000-URL crawl."""
    return Faults(
        drop_every=150,  # every connection/request is cut after 150 results
        drop_results_for=frozenset(urls[7::97]),  # ~20 results silently not sent
        drop_summary_first=4,  # the first four summaries are lost
        freeze_after=30,  # the first connection/request of each transport freezes
        malformed_after=20,  # one malformed message on every connection/request
    )


class _Meter:
    """Wraps the driver's wait for the next event and the retry policy's sleep."""

    def __init__(self) -> None:
        self.deadlines = 0.0
        self.timeouts = 0
        self.backoff = 0.0
        self.failures = 0

    def sleep(self, seconds: float) -> None:
        self.backoff += seconds
        time.sleep(seconds)

    def install(self) -> Callable[[], None]:
        original_next = FanIn.next_item
        original_fail = _StreamCore._after_failure
        meter = self

        def next_item(fanin: Any, active: Any) -> Any:
            started = time.monotonic()
            lane, item = original_next(fanin, active)
            if isinstance(item, StreamTimeoutError):
                meter.deadlines += time.monotonic() - started
                meter.timeouts += 1
            return lane, item

        def after_failure(core: Any, lane: Any, cause: BaseException) -> None:
            meter.failures += 1
            original_fail(core, lane, cause)

        FanIn.next_item = next_item  # type: ignore[method-assign]
        _StreamCore._after_failure = after_failure  # type: ignore[method-assign]

        def uninstall() -> None:
            FanIn.next_item = original_next  # type: ignore[method-assign]
            _StreamCore._after_failure = original_fail  # type: ignore[method-assign]

        return uninstall


def run_once(transport: str, n: int, *, faults: bool = True) -> dict[str, Any]:
    """One crawl of ``n`` URLs; the time it took and where it went."""
    urls = [f"https://example.org/page/{i}" for i in range(n)]
    config = ServerConfig(synthetic_doc_size=200, faults=faults_for(urls) if faults else Faults())
    meter = _Meter()
    # The default policy, its sleep measured (an injected sleep waits the same).
    policy = RetryPolicy(sleep=meter.sleep)
    uninstall = meter.install()
    try:
        with serve_in_thread(config) as server, RipTideClient(server.base_url, retry=policy) as client:
            crawl = getattr(client.streaming, f"crawl_{transport}")
            started = time.monotonic()
            indices = [e.data["index"] for e in crawl(urls) if e.event_type == "result"]
            elapsed = time.monotonic() - started
    finally:
        uninstall()
    if sorted(indices) != list(range(n)):
        raise AssertionError(f"{transport}: not every URL exactly once ({len(indices)} results)")
    return {
        "transport": transport,
        "urls": n,
        "seconds": round(elapsed, 2),
        "deadlines": round(meter.deadlines, 2),
        "timeouts": meter.timeouts,
        "backoff": round(meter.backoff, 2),
        "failures": meter.failures,
        "rest": round(elapsed - meter.deadlines - meter.backoff, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=__doc__.split("\n")[0])
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per transport (median shown)")
    parser.add_argument("--no-faults", action="store_true", help="the baseline without faults")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args(argv)
    for transport in args.transports.split(","):
        runs = [run_once(transport, args.urls, faults=not args.no_faults) for _ in range(args.repeat)]
        row = dict(runs[0])
        for key in ("seconds", "deadlines", "backoff", "rest"):
            row[key] = round(statistics.median(r[key] for r in runs), 2)
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{transport:9} {row['urls']} URLs: {row['seconds']:7.2f} s  "
                  f"(deadlines {row['deadlines']:.2f} s in {row['timeouts']} timeout(s), "
                  f"backoff {row['backoff']:.2f} s over {row['failures']} failure(s), "
                  f"rest {row['rest']:.2f} s)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
