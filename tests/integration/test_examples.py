"""Every script in examples/ runs to completion against the local server it starts itself."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

# What each example must print: a line proving it did its job, not just that it exited.
EXPECTED = {
    "basic_streaming.py": "done: 8 of 8 succeeded",
    "crawl_options.py": "second run (served from the cache): 8 of 8 from the cache",
    "callbacks.py": "'result': 8",
    "error_handling.py": "8 results, each URL once: True",
    "connection_health.py": "ping: success=True",
    "graceful_shutdown.py": "interrupted: closed=True, reader threads=[]",
    "message_types.py": "summary: 3 ok, 0 failed",
    "websocket_vs_ndjson.py": "crawl_sse",
}


# Examples run by a slower suite of their own (they need an extra the default run lacks).
RUN_ELSEWHERE = {"dask_crawl.py": "tests/dask/test_cli_dask.py (marker dask)"}


def test_examples_all_listed():
    """Each example script has an expectation here (a new one must be added)."""
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED) | set(RUN_ELSEWHERE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name):
    """The example exits 0 and prints its proof line, with no traceback."""
    proc = subprocess.run(
        [sys.executable, name], cwd=EXAMPLES, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert EXPECTED[name] in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr
