"""Smoke tests of the benchmark code, so it cannot rot. No timings are asserted."""

from __future__ import annotations

import pytest

core = pytest.importorskip("benchmarks.core")


def test_bench_core_runs_on_tiny_inputs() -> None:
    """The core benchmark times every case for every size and reports positive rates."""
    rows = core.run_core(count=20, sizes=(200, 4096), rounds=1)
    cases = {row["case"] for row in rows}
    assert {"ws decode_message", "ndjson feed+classify", "sse feed+to_event",
            "StreamingResult()", ".result (typed)"} <= cases
    assert len(rows) == 2 * len(cases)
    assert all(row["events_per_s"] > 0 for row in rows)
    assert "ws decode_message" in core.format_core(rows)


def test_bench_core_payloads_decode_to_the_same_results() -> None:
    """The three wire forms built for the core benchmark carry the same results."""
    payloads = core.build_payloads(5, 300)
    made = {name: fn() for name, (fn, _) in core.cases(payloads).items()}
    assert made["ws decode_message"] == made["ndjson feed+classify"] == made["sse feed+to_event"] == 5


def test_bench_targets_and_tables_from_a_synthetic_report() -> None:
    """Target checks and table formatting work on hand-made cells (no processes): the
    chunked table's 1.2x goals and CPU-per-event goal, the one-request table's 1.0x."""
    run = pytest.importorskip("benchmarks.run")

    def cell(client: str, eps: float, table: str = "chunked", cpu: float = 20.0) -> dict[str, object]:
        return {"table": table, "client": client, "doc_size": 200, "count": 10_000,
                "capped": False, "events_per_s": eps, "events_per_s_range": [eps * 0.9, eps * 1.1],
                "mb_per_s": 1.0, "ttfr_ms": 3.0, "peak_rss_mb": 30.0, "cpu_us_per_event": cpu,
                "errors": []}

    cells = [cell("sdk_ws", 130.0, cpu=15.0), cell("picows", 100.0, cpu=16.0),
             cell("wsclient", 90.0), cell("raw_socket", 200.0), cell("sdk_ws_p1", 120.0),
             cell("sdk_ndjson", 110.0), cell("requests_ndjson", 100.0),
             cell("sdk_ws", 100.0, "single"), cell("picows", 101.0, "single")]
    rows = run.targets(cells, None, ttfr_count=10_000, min_count=1000)
    verdicts = {(row["table"], row["target"].split(" (")[0]): row["pass"] for row in rows}
    assert verdicts[("chunked", "crawl_websocket >= 1.2x fastest WS peer")] is True
    assert verdicts[("chunked", "crawl_websocket CPU/event <= leanest WS peer's")] is True
    assert verdicts[("chunked", "crawl_ndjson >= 1.2x requests loop")] is False
    assert verdicts[("chunked", "crawl_websocket >= 1.0x crawl_ndjson")] is True
    assert verdicts[("chunked", "sdk_ws defaults >= 1.0x sdk_ws_p1")] is True
    assert verdicts[("single", "crawl_websocket >= 1x fastest WS peer")] is False
    assert verdicts[("chunked", "sdk_ws time to first result < 5 ms")] is True
    assert "sdk_ws" in run.format_loopback(cells)
    assert "PASS" in run.format_targets(rows) and "FAIL" in run.format_targets(rows)
    assert run.exit_code(rows, check=True) == 1 and run.exit_code(rows, check=False) == 0


def test_bench_peers_replay_the_sdks_chunks() -> None:
    """Every peer sends the SDK's own requests: consecutive slices of at most the chunk."""
    clients = pytest.importorskip("benchmarks.clients")
    urls = clients.urls_for(250)
    parts = clients.chunks_of(urls, 100)
    assert [len(p) for p in parts] == [100, 100, 50]
    assert sum(parts, []) == urls
    from riptide_sync.protocol.session import CrawlSession

    session = CrawlSession(urls, max_per_request=100)
    planned = []
    while (plan := session.next_request()) is not None:
        planned.append(plan.urls)
    assert planned == parts
