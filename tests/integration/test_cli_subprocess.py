"""The ``riptide-sync`` command as a real process (``python -m riptide_sync``): a stdin pipe,
a terminal forced through rich's ``TTY_COMPATIBLE``, and Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("aiohttp")  # the local server (server extra)

from riptide_sync.server import Faults  # noqa: E402

TIMEOUT = 30.0
"""Seconds any one CLI process may take before the test fails."""


def cli_env(**extra: str) -> dict[str, str]:
    """The test's (already cleaned) environment, without terminal overrides, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS")}
    env.update(extra)
    return env


def run_cli(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "riptide_sync", *args], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT, env=cli_env(**env))


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _default_sigint() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_process_crawls_urls_from_stdin_pipe(server):
    """``crawl -i -`` reads a real stdin pipe; piped output is plain lines, exit 0."""
    urls = server.article_urls()[:4]
    done = run_cli("crawl", "--base-url", server.base_url, "--transport", "ndjson", "-i", "-",
                   stdin="\n".join(urls) + "\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all(" 200 " in line for line in lines)
    assert "\x1b[" not in done.stdout + done.stderr
    assert "done: 4 of 4 URLs crawled over ndjson" in done.stderr


def test_cli_process_forced_terminal_renders_progress_bar(server):
    """With rich told stderr is a terminal (TTY_COMPATIBLE=1) the bar renders and the summary ends it."""
    urls = server.article_urls()[:3]
    done = run_cli("crawl", "--base-url", server.base_url, *urls, TTY_COMPATIBLE="1", COLUMNS="120")
    assert done.returncode == 0, done.stderr
    assert "\x1b[" in done.stderr and "crawling" in done.stderr and "3/3" in done.stderr
    assert "done: 3 of 3 URLs crawled" in done.stderr.strip().splitlines()[-1]
    assert len(done.stdout.splitlines()) == 3  # stdout is a pipe: plain result lines
    assert "Traceback" not in done.stderr


def test_cli_process_failed_url_exits_1(server):
    """A process run where one URL fails exits 1 and names it."""
    missing_host = "http://demo.riptide.test/demo/missing"  # a 404 origin: a failed fetch
    done = run_cli("crawl", "--base-url", server.base_url, server.article_urls()[0], missing_host)
    assert done.returncode == 1
    assert f"failed: {missing_host}" in done.stderr


def test_cli_process_health_refused_is_one_line():
    """``health`` against a closed port: exit 1, one line on stderr, no traceback."""
    done = run_cli("health", "--base-url", closed_port_url())
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "connection refused" in done.stderr


def test_cli_process_ping_and_status(server):
    """``ping`` and ``status`` as processes: exit 0 with their one-line reports."""
    ping = run_cli("ping", "--base-url", server.base_url)
    assert ping.returncode == 0 and ping.stdout.startswith("pong from ws://127.0.0.1:")
    status = run_cli("status", "--base-url", server.base_url, "--json")
    assert status.returncode == 0 and '"is_healthy": true' in status.stdout


def test_cli_process_sigint_stops_cleanly_with_progress(make_server, tmp_path):
    """Ctrl-C during a slow crawl: exit 130 within 2 s, 'interrupted after N of M', no traceback."""
    srv = make_server(faults=Faults(send_delay=0.5))
    urls = srv.article_urls()[:20]
    target = tmp_path / "results.jsonl"
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # e.g. a background job's
    proc = subprocess.Popen(
        [sys.executable, "-m", "riptide_sync", "crawl", "--base-url", srv.base_url,
         "-o", str(target), *urls],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        preexec_fn=_default_sigint if ignored else None,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (target.exists() and target.read_text(encoding="utf-8").count("\n") >= 1):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no result arrived"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=TIMEOUT)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert took < 2.0
    assert "Traceback" not in err
    written = target.read_text(encoding="utf-8").count("\n")
    assert 1 <= written < len(urls)
    said = re.search(rf"interrupted after (\d+) of {len(urls)} results; (\d+) written to (\S+)", err)
    assert said is not None, err
    assert int(said[2]) == written and said[3] == str(target)
    assert abs(int(said[1]) - written) <= 1  # the signal may land between counting and writing
