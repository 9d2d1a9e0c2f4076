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
    """Target checks and table formatting work on hand-made cells (no processes)."""
    run = pytest.importorskip("benchmarks.run")

    def cell(client: str, eps: float) -> dict[str, object]:
        return {"client": client, "doc_size": 200, "count": 10_000, "capped": False,
                "events_per_s": eps, "events_per_s_range": [eps * 0.9, eps * 1.1],
                "mb_per_s": 1.0, "ttfr_ms": 3.0, "peak_rss_mb": 30.0, "cpu_per_10k": 0.5,
                "errors": []}

    cells = [cell("sdk_ws", 100.0), cell("wsclient", 90.0), cell("raw_socket", 110.0),
             cell("sdk_ndjson", 80.0), cell("requests_ndjson", 100.0)]
    rows = run.targets(cells, None, ttfr_count=10_000, min_count=1000)
    verdicts = {row["target"].split(" (")[0]: row["pass"] for row in rows}
    assert verdicts["crawl_websocket >= 1.0x fastest WS peer"] is True
    assert verdicts["crawl_ndjson >= 1.0x raw requests loop"] is False
    assert "sdk_ws" in run.format_loopback(cells)
    assert "PASS" in run.format_targets(rows) and "FAIL" in run.format_targets(rows)
