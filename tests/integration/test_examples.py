"""Every script in examples/ runs to completion against the local server it starts itself.

(The README's own code blocks and command lines: tests/integration/test_readme.py.)
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
from support import clean_env

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


from riptide_sync.server.demo_site import DEMO_ORIGIN  # noqa: E402  (the demo site, on any port)


def test_examples_with_base_url_crawl_that_servers_demo_pages(make_server):
    """With RIPTIDE_BASE_URL set and no RIPTIDE_EXAMPLE_URLS, an example crawls the demo
    pages of that server (offline), not a page on the internet."""
    srv = make_server()
    proc = subprocess.run([sys.executable, "basic_streaming.py"], cwd=EXAMPLES, capture_output=True,
                          text=True, timeout=60, env=clean_env(RIPTIDE_BASE_URL=srv.base_url))
    assert proc.returncode == 0, proc.stderr
    assert "done: 8 of 8 succeeded" in proc.stdout
    asked = [url for logged in srv.request_log for url in logged.urls]
    assert len(asked) == 8 and all(url.startswith(DEMO_ORIGIN + "/demo/") for url in asked)
    chosen = srv.article_urls()[2:4]
    proc = subprocess.run([sys.executable, "basic_streaming.py"], cwd=EXAMPLES, capture_output=True,
                          text=True, timeout=60,
                          env=clean_env(RIPTIDE_BASE_URL=srv.base_url, RIPTIDE_EXAMPLE_URLS=",".join(chosen)))
    assert "done: 2 of 2 succeeded" in proc.stdout, proc.stderr


def test_examples_name_no_internet_url():
    """No example names a URL outside the local server (the first steps stay offline);
    names under the reserved ``.test`` domain (RFC 2606: never on the internet) are the
    local server's own (its demo site, synthetic pages)."""
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!127\.0\.0\.1|localhost|[\w.-]+\.test[/:])", text), path.name


def test_package_docstring_first_steps_run_offline():
    """The first-steps snippet of help(riptide_sync) runs as written, offline."""
    import textwrap

    import riptide_sync

    doc = riptide_sync.__doc__ or ""
    code = textwrap.dedent(doc.split("::\n\n", 1)[1].split("\nAgainst a server", 1)[0])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 5 and all(line.endswith(" True") and "demo.riptide.test" in line for line in lines)
