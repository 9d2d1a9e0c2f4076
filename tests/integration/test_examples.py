"""Every script in examples/ runs to completion against the local server it starts itself."""

from __future__ import annotations

import os
import pathlib
import re
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


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("RIPTIDE_") and not k.upper().endswith("_PROXY")}
    env.update(extra)
    return env


from riptide_sync.server.demo_site import DEMO_ORIGIN  # noqa: E402  (the demo site, on any port)


def test_examples_with_base_url_crawl_that_servers_demo_pages(make_server):
    """With RIPTIDE_BASE_URL set and no RIPTIDE_EXAMPLE_URLS, an example crawls the demo
    pages of that server (offline), not a page on the internet."""
    srv = make_server()
    proc = subprocess.run([sys.executable, "basic_streaming.py"], cwd=EXAMPLES, capture_output=True,
                          text=True, timeout=60, env=_clean_env(RIPTIDE_BASE_URL=srv.base_url))
    assert proc.returncode == 0, proc.stderr
    assert "done: 8 of 8 succeeded" in proc.stdout
    asked = [url for logged in srv.request_log for url in logged.urls]
    assert len(asked) == 8 and all(url.startswith(DEMO_ORIGIN + "/demo/") for url in asked)
    chosen = srv.article_urls()[2:4]
    proc = subprocess.run([sys.executable, "basic_streaming.py"], cwd=EXAMPLES, capture_output=True,
                          text=True, timeout=60,
                          env=_clean_env(RIPTIDE_BASE_URL=srv.base_url, RIPTIDE_EXAMPLE_URLS=",".join(chosen)))
    assert "done: 2 of 2 succeeded" in proc.stdout, proc.stderr


def test_examples_name_no_internet_url():
    """No example names a URL outside the local server (the first steps stay offline);
    names under the reserved ``.test`` domain (RFC 2606: never on the internet) are the
    local server's own (its demo site, synthetic pages)."""
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!127\.0\.0\.1|localhost|[\w.-]+\.test[/:])", text), path.name


def test_readme_quick_start_runs_offline():
    """The README's Quick start snippet runs as written, against the bundled server only."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "example.com" not in section.split("## ", 1)[0]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=_clean_env(), cwd=EXAMPLES.parent)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "5 of 5 succeeded"
    assert sum(" 200 True" in line and "demo.riptide.test" in line for line in lines) == 5


def test_readme_documents_every_public_knob():
    """Each parameter of the client, the stream calls, RetryPolicy, ServerConfig and Faults
    is named in the README, as is every logger the library uses."""
    import dataclasses
    import inspect

    from riptide_sync import RetryPolicy, RipTideClient
    from riptide_sync.server import Faults, ServerConfig

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    client = RipTideClient()
    calls = [RipTideClient.__init__, client.crawl, client.streaming.crawl_websocket,
             client.streaming.crawl_ndjson, client.streaming.crawl_sse,
             client.streaming.ping_websocket, client.streaming.get_websocket_status]
    names = {name for call in calls for name in inspect.signature(call).parameters} - {"self", "urls"}
    names |= {f.name for cls in (RetryPolicy, ServerConfig, Faults) for f in dataclasses.fields(cls)}
    missing = sorted(name for name in names if f"`{name}" not in readme and f"{name}=" not in readme)
    assert missing == []
    root = EXAMPLES.parent / "riptide_sync"
    loggers = {m for path in root.rglob("*.py")
               for m in re.findall(r'getLogger\("(riptide_sync[^"]*)"\)', path.read_text(encoding="utf-8"))}
    assert loggers and all(f"`{name}`" in readme for name in loggers), loggers
    assert "ping_websocket(websocket_url=None)" in readme
    client.close()


def test_package_docstring_first_steps_run_offline():
    """The first-steps snippet of help(riptide_sync) runs as written, offline."""
    import textwrap

    import riptide_sync

    doc = riptide_sync.__doc__ or ""
    code = textwrap.dedent(doc.split("::\n\n", 1)[1].split("\nAgainst a server", 1)[0])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 5 and all(line.endswith(" True") and "demo.riptide.test" in line for line in lines)


def test_readme_command_lines_parse():
    """Every riptide-sync command line in the README's shell blocks is accepted by the
    parser as written (options and subcommands cannot drift from the docs)."""
    import shlex

    from riptide_sync.cli import build_parser

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in readme.split("```bash\n")[1:]]
    commands = []
    for line in "\n".join(blocks).splitlines():
        for part in line.split("#", 1)[0].replace("&&", ";").split(";"):
            words = shlex.split(part)
            words = [w for w in words if w != "&"]
            if ">" in words:
                words = words[: words.index(">")]
            if words and words[0].endswith("riptide-sync") and words[1:] not in (["-V"], ["--version"]):
                commands.append(words[1:])
    assert len(commands) >= 10
    parser = build_parser()
    for argv in commands:
        args, extra = parser.parse_known_args(argv)
        assert not extra and getattr(args, "func", None), argv
