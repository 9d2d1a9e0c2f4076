"""Client instructions per event, counted with valgrind's callgrind (immune to machine load).

Usage::

    python -m benchmarks.callgrind CLIENT [CLIENT ...] [--size 200] [--counts 2000,6000]
                                   [--chunk 100] [--top 15] [--by-thread] [--json FILE]

Starts one synthetic-mode server (:func:`benchmarks.run.server`) in its own process, its
limit ``--chunk`` URLs a request (100 by default: the real server's; every client sends
requests of that size), then runs each client (:mod:`benchmarks.clients`, one process
per run) under ``valgrind --tool=callgrind --separate-threads=yes`` once at each of the
two counts.
Instructions per event = (Ir(high) - Ir(low)) / (high - low): start-up, imports, the
client's warm-up crawl and the connection set-up are in both runs and cancel out.

Printed per client: instructions per event in total and per thread (thread 1 is the
main thread, i.e. the consumer; the others are numbered in order of creation, so for the
SDK's WebSocket stream the reader threads, one per connection); then the ``--top``
functions by self instructions per event (the same difference, per C function, from
``callgrind_annotate --inclusive=no`` of both runs; ``'N`` recursion suffixes merged).
Python code shows up as CPython's bytecode loop (``_PyEval_EvalFrameDefault``); for a
Python-level split use cProfile (main thread only) or ``--by-thread``.

Caveat: under valgrind the client runs ~50x slower than the server, so every ``recv()``
finds a full socket buffer: per-read costs (syscalls, wake-ups) are spread over more
events than in a real-time run. Compare clients under the same conditions, not with
wall-clock CPU figures.

The ``callgrind.out`` files go to a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Iterable

from .clients import CLIENTS
from .run import server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_ROW = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$")
_RECURSION = re.compile(r"'\d+$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]+$")


# --- parsing (pure) --------------------------------------------------------------------------


def parse_totals(text: str) -> int:
    """Total instructions (Ir) of one callgrind out file (its ``totals:`` line, else
    ``summary:``), or of ``callgrind_annotate`` output (its ``PROGRAM TOTALS`` row).
    The first event is taken when several were recorded.

    Raises:
        ValueError: none of these lines is in ``text``.
    """
    found: dict[str, int] = {}
    for line in text.splitlines():
        for key in ("totals:", "summary:"):
            if line.startswith(key) and line[len(key):].split():
                found.setdefault(key, int(line[len(key):].split()[0]))
        if line.rstrip().endswith("PROGRAM TOTALS"):
            match = _ROW.match(line)
            if match:
                found.setdefault("program", int(match.group(1).replace(",", "")))
    for key in ("totals:", "summary:", "program"):
        if key in found:
            return found[key]
    raise ValueError("no 'totals:', 'summary:' or 'PROGRAM TOTALS' line in the callgrind text")


def split_location(location: str) -> tuple[str, str]:
    """``/src/Python/ceval.c:_PyEval_EvalFrameDefault'2 [/lib/libpython3.11.so.1.0]`` ->
    ``("_PyEval_EvalFrameDefault", "libpython3.11.so.1.0")``: the source path dropped, the
    object reduced to its file name ("" when the row names none), callgrind's
    recursion-depth suffix removed (so every depth of one function adds up to one row)."""
    obj = ""
    if location.endswith("]") and " [" in location:
        location, obj = location[:-1].rsplit(" [", 1)
        obj = os.path.basename(obj)
    func = location.split(":", 1)[1] if ":" in location else location  # C++/Rust names have "::"
    return _RECURSION.sub("", func.strip()), obj


def parse_functions(annotate_text: str) -> dict[str, int]:
    """Self instructions per function from ``callgrind_annotate --inclusive=no`` output
    (its ``file:function`` table), named ``function [object]``.

    Rows of one function add up: its recursion depths, and the rows of code inlined from
    headers (those name no object; they take the one the function's other rows name).
    Functions of a stripped library (hex addresses: orjson's wheel) add up to one row,
    ``(no symbols) [object]``."""
    values: dict[str, int] = {}
    objects: dict[str, str] = {}
    in_table = False
    for line in annotate_text.splitlines():
        if line.strip().endswith("file:function"):
            in_table = True
            continue
        if not in_table:
            continue
        if line.startswith("-----") or not line.strip():
            if values:
                break  # the table ends; anything after is source annotation
            continue
        match = _ROW.match(line)
        if not match:
            continue
        func, obj = split_location(match.group(2))
        if _ADDRESS.match(func):
            func = f"(no symbols) [{obj}]" if obj else "(no symbols)"
        elif obj:
            objects.setdefault(func, obj)
        values[func] = values.get(func, 0) + int(match.group(1).replace(",", ""))
    return {f"{func} [{objects[func]}]" if func in objects else func: value
            for func, value in values.items()}


def per_event(low: int, high: int, events: int) -> float:
    """Instructions per event between two runs that differ by ``events`` (> 0) events."""
    if events <= 0:
        raise ValueError(f"the event difference must be > 0, got {events}")
    return (high - low) / events


def top_differences(low: dict[str, int], high: dict[str, int], events: int,
                    top: int | None = None) -> list[tuple[str, float]]:
    """Functions by self instructions per event ((high - low) / events), largest first;
    ``top`` None keeps every function. A function missing from one run counts 0 there."""
    rows = [(name, per_event(low.get(name, 0), high.get(name, 0), events))
            for name in set(low) | set(high)]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows if top is None else rows[:top]


def add_up(tables: Iterable[dict[str, int]]) -> dict[str, int]:
    """The sum of several per-function tables (e.g. one per thread)."""
    out: dict[str, int] = {}
    for table in tables:
        for name, value in table.items():
            out[name] = out.get(name, 0) + value
    return out


# --- running ---------------------------------------------------------------------------------


def check_tools() -> None:
    """Raises SystemExit naming the missing tool (valgrind or callgrind_annotate)."""
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"benchmarks.callgrind: {tool!r} not found on PATH; install "
                             "valgrind (e.g. apt-get install valgrind)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        env.pop(name, None)  # loopback only, as in benchmarks.run
    return env


def measure(client: str, base: str, count: int, workdir: str, chunk: int = 100,
            timeout: float = 3600.0) -> dict[int, tuple[int, dict[str, int]]]:
    """One client run under callgrind: {thread number: (total Ir, self Ir per function)}.

    Raises:
        RuntimeError: the run failed or delivered fewer than ``count`` results.
    """
    out = os.path.join(workdir, f"{client}-{count}.out")
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
           f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks.clients",
           client, base, str(count), "--chunk", str(chunk)]
    run = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=timeout)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    if run.returncode != 0 or report.get("results") != count or report.get("error"):
        raise RuntimeError(f"{client} at {count}: exit {run.returncode}, report {report}, "
                           f"stderr {run.stderr.strip()[-300:]!r}")
    threads: dict[int, tuple[int, dict[str, int]]] = {}
    files = sorted(glob.glob(out + "-*")) or [out]  # one file per thread: out-01, out-02...
    for path in files:
        suffix = path.rsplit("-", 1)[-1]
        number = int(suffix) if path != out and suffix.isdigit() else 1
        with open(path, encoding="utf-8", errors="replace") as f:
            total = parse_totals(f.read())
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
            capture_output=True, text=True, check=True).stdout
        threads[number] = (total, parse_functions(annotated))
    return threads


def compare(client: str, low: dict[int, tuple[int, dict[str, int]]],
            high: dict[int, tuple[int, dict[str, int]]], events: int,
            top: int | None = None) -> dict[str, Any]:
    """The per-event figures of one client from its two runs (see the module docstring);
    ``top`` functions per table, None: all."""
    numbers = sorted(set(low) | set(high))
    zero: tuple[int, dict[str, int]] = (0, {})
    threads = {n: per_event(low.get(n, zero)[0], high.get(n, zero)[0], events) for n in numbers}
    return {
        "client": client,
        "ir_low": sum(t for t, _ in low.values()),
        "ir_high": sum(t for t, _ in high.values()),
        "per_event": per_event(sum(t for t, _ in low.values()),
                               sum(t for t, _ in high.values()), events),
        "threads": threads,
        "functions": top_differences(add_up(f for _, f in low.values()),
                                     add_up(f for _, f in high.values()), events, top),
        "thread_functions": {n: top_differences(low.get(n, zero)[1], high.get(n, zero)[1],
                                                events, top) for n in numbers},
    }


def format_result(row: dict[str, Any], by_thread: bool = False, top: int = 15) -> str:
    """One client's block of the printed report: the ``top`` functions of each table."""
    threads = "  ".join(f"t{n} {v / 1e3:,.1f}k" for n, v in row["threads"].items()
                        if abs(v) >= 50)
    lines = [f"{row['client']}: {row['per_event']:,.0f} instructions/event "
             f"(Ir {row['ir_low']:,} -> {row['ir_high']:,}); per thread: {threads}"]

    def table(rows: list[tuple[str, float]], indent: str) -> None:
        total = row["per_event"] or 1.0
        for name, value in rows[:top]:
            lines.append(f"{indent}{value:>10,.0f}  {100 * value / total:5.1f}%  {name}")

    table(row["functions"], "  ")
    if by_thread:
        for number, rows in row["thread_functions"].items():
            if abs(row["threads"][number]) >= 50:
                lines.append(f"  thread {number} ({row['threads'][number]:,.0f}/event):")
                table(rows, "    ")
    return "\n".join(lines)


def format_summary(rows: list[dict[str, Any]]) -> str:
    """One line per client: instructions per event, and relative to the first client."""
    if not rows:
        return ""
    first = rows[0]["per_event"] or 1.0
    head = (f"{rows[0]['size']} B documents, {rows[0]['counts'][0]:,} -> "
            f"{rows[0]['counts'][1]:,} results, {rows[0]['chunk']} URLs a request")
    lines = [head, f"{'client':<18}{'instructions/event':>20}{'x first':>9}"]
    for row in rows:
        lines.append(f"{row['client']:<18}{row['per_event']:>20,.0f}"
                     f"{row['per_event'] / first:>9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("clients", nargs="+", metavar="CLIENT", help=", ".join(CLIENTS))
    parser.add_argument("--size", type=int, default=200, help="document size (bytes)")
    parser.add_argument("--counts", default="2000,6000", help="LOW,HIGH results per run")
    parser.add_argument("--chunk", type=int, default=100,
                        help="URLs per request (the server's limit too)")
    parser.add_argument("--top", type=int, default=15, help="functions shown per client")
    parser.add_argument("--by-thread", action="store_true",
                        help="also the top functions of each thread")
    parser.add_argument("--json", metavar="FILE",
                        help="write the figures as JSON too (every function, not only --top)")
    args = parser.parse_args(argv)
    unknown = [c for c in args.clients if c not in CLIENTS]
    if unknown:
        parser.error(f"unknown client(s) {unknown}; choose from {', '.join(CLIENTS)}")
    try:
        low, high = (int(c) for c in args.counts.split(","))
    except ValueError:
        parser.error(f"--counts must be LOW,HIGH (two integers), got {args.counts!r}")
    if not 0 < low < high:
        parser.error(f"--counts needs 0 < LOW < HIGH, got {args.counts!r}")
    if args.chunk < 1:
        parser.error(f"--chunk must be >= 1, got {args.chunk}")
    check_tools()
    rows = []
    workdir = tempfile.mkdtemp(prefix="riptide-callgrind-")
    try:
        with server(args.size, args.chunk) as base:
            for client in args.clients:
                row = compare(client, measure(client, base, low, workdir, args.chunk),
                              measure(client, base, high, workdir, args.chunk), high - low)
                row.update(size=args.size, counts=[low, high], chunk=args.chunk)
                rows.append(row)
                print(format_result(row, args.by_thread, args.top), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n" + format_summary(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
