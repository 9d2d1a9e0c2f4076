"""The callgrind tool's parsing and arithmetic on hand-made callgrind text (no valgrind)."""

from __future__ import annotations

import pytest

callgrind = pytest.importorskip("benchmarks.callgrind")

OUT_FILE = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 3083
cmd:  python -m benchmarks.clients picows http://127.0.0.1:18700 2000
part: 1
thread: 2
events: Ir
summary: 643527616
fn=(1) main
5 3
totals: 643527616
"""

ANNOTATE = """\
--------------------------------------------------------------------------------
Profile data file 'a.out' (creator: callgrind-3.19.0)
--------------------------------------------------------------------------------
Events recorded:  Ir
Thresholds:       100

--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
{total} (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
{eval1} ( 9.46%)  /tmp/b/Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault'2 [/root/lib/libpython3.11.so.1.0]
{eval2} ( 3.00%)  /tmp/b/Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault [/root/lib/libpython3.11.so.1.0]
{orjson} ( 2.99%)  ???:orjson::deserialize::deserializer::deserialize [/venv/orjson.cpython-311-x86_64-linux-gnu.so]
   2,000 ( 0.20%)  /tmp/b/Include/object.h:_PyEval_EvalFrameDefault'2
     300 ( 0.03%)  ???:0x0000000000012f90'2 [/venv/stripped.so]
     200 ( 0.02%)  ???:0x00000000000284f0 [/venv/stripped.so]
     100 ( 0.01%)  /tmp/b/Objects/dictobject.c:insertdict [/root/lib/libpython3.11.so.1.0]

--------------------------------------------------------------------------------
-- Auto-annotated source: /tmp/b/Python-3.11.7/Python/ceval.c
--------------------------------------------------------------------------------
  1,000 ( 0.10%)  int x = 1;
"""


def annotate(total: int, eval1: int, eval2: int, orjson: int) -> str:
    return ANNOTATE.format(total=f"{total:,}", eval1=f"{eval1:,}", eval2=f"{eval2:,}",
                           orjson=f"{orjson:,}")


def test_totals_from_the_out_file_and_from_annotate_output() -> None:
    """The ``totals:`` line of an out file, else ``summary:``, else the PROGRAM TOTALS row."""
    assert callgrind.parse_totals(OUT_FILE) == 643_527_616
    assert callgrind.parse_totals("events: Ir\nsummary: 42 7\n") == 42
    assert callgrind.parse_totals(annotate(1_234_567, 1, 2, 3)) == 1_234_567
    with pytest.raises(ValueError, match="totals"):
        callgrind.parse_totals("events: Ir\n")


def test_function_names_lose_the_source_path_and_the_recursion_suffix() -> None:
    assert callgrind.split_location(
        "/tmp/b/Python/ceval.c:_PyEval_EvalFrameDefault'2 [/root/lib/libpython3.11.so.1.0]"
    ) == ("_PyEval_EvalFrameDefault", "libpython3.11.so.1.0")
    assert callgrind.split_location("???:memcpy") == ("memcpy", "")
    assert callgrind.split_location("???:orjson::loads [/v/orjson.so]") == ("orjson::loads",
                                                                            "orjson.so")


def test_function_table_sums_recursion_depths_and_stops_at_the_source_annotation() -> None:
    """Recursion depths and inlined header rows (no object named) add up to one row; the
    hex addresses of a stripped library add up to one row per library."""
    table = callgrind.parse_functions(annotate(10_000, 6_000, 3_000, 900))
    assert table == {"_PyEval_EvalFrameDefault [libpython3.11.so.1.0]": 11_000,
                     "(no symbols) [stripped.so]": 500,
                     "orjson::deserialize::deserializer::deserialize "
                     "[orjson.cpython-311-x86_64-linux-gnu.so]": 900,
                     "insertdict [libpython3.11.so.1.0]": 100}


def test_per_event_difference_and_top_functions() -> None:
    """(high - low) / events, for the totals and for each function; a function seen in one
    run only counts 0 in the other; largest first, cut at ``top``."""
    assert callgrind.per_event(1_000_000, 1_400_000, 4_000) == 100.0
    with pytest.raises(ValueError, match="0"):
        callgrind.per_event(1, 2, 0)
    low = callgrind.parse_functions(annotate(10_000, 6_000, 3_000, 900))
    high = callgrind.parse_functions(annotate(50_000, 26_000, 15_000, 4_900))
    high["PyUnicode_New [libpython3.11.so.1.0]"] = 8_000
    rows = callgrind.top_differences(low, high, 4_000, top=3)
    assert rows == [("_PyEval_EvalFrameDefault [libpython3.11.so.1.0]", 8.0),
                    ("PyUnicode_New [libpython3.11.so.1.0]", 2.0),
                    ("orjson::deserialize::deserializer::deserialize "
                     "[orjson.cpython-311-x86_64-linux-gnu.so]", 1.0)]
    assert len(callgrind.top_differences(low, high, 4_000)) == 5


def test_compare_adds_threads_up_and_keeps_each_threads_figure() -> None:
    """Totals and functions add up over the threads; a thread of only one run counts 0 in
    the other; the printed block names the client and each thread's figure."""
    low = {1: (1_000_000, {"a": 600_000}), 2: (100_000, {"b": 100_000})}
    high = {1: (1_800_000, {"a": 1_000_000}), 2: (300_000, {"b": 300_000}),
            3: (40_000, {"b": 40_000})}
    row = callgrind.compare("sdk_ws", low, high, 4_000, top=5)
    assert row["per_event"] == (2_140_000 - 1_100_000) / 4_000
    assert row["threads"] == {1: 200.0, 2: 50.0, 3: 10.0}
    assert row["functions"] == [("a", 100.0), ("b", 60.0)]
    assert row["thread_functions"][3] == [("b", 10.0)]
    text = callgrind.format_result(row, by_thread=True)
    assert text.startswith("sdk_ws: 260 instructions/event")
    assert len(callgrind.format_result(row, top=1).splitlines()) == 2  # the head + 1 function
    assert "thread 2 (50/event):" in text
    other = dict(row, client="picows", per_event=520.0)
    summary = callgrind.format_summary([dict(row, size=200, counts=[2000, 6000], chunk=100),
                                        dict(other, size=200, counts=[2000, 6000], chunk=100)])
    assert "200 B documents, 2,000 -> 6,000 results, 100 URLs a request" in summary
    assert summary.splitlines()[-1].split() == ["picows", "520", "2.00"]


def test_command_line_errors_name_the_value_before_anything_runs(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv, needle in ((["nosuch"], "nosuch"), (["picows", "--counts", "6000,2000"], "6000,2000"),
                         (["picows", "--counts", "x"], "'x'"), (["picows", "--chunk", "0"], "0")):
        with pytest.raises(SystemExit):
            callgrind.main(argv)
        assert needle in capsys.readouterr().err


def test_missing_valgrind_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callgrind.shutil, "which", lambda tool: None)
    with pytest.raises(SystemExit, match="'valgrind' not found"):
        callgrind.check_tools()
