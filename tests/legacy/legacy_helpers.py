"""Helpers of the legacy suite: a server in its own process, and scripts run in fresh ones.

Fork, gevent and eventlet scenarios each run in a fresh interpreter (``run_script``): a
process that forks must have no other thread (the pytest process has the session server's),
and monkey-patching must happen before anything else is imported. The server they talk to
runs in a process of its own too (``server_process``), so that no thread of the server is
in the process under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServerProcess(NamedTuple):
    base_url: str
    proc: subprocess.Popen[str]

    def urls(self, count: int, tag: str = "u") -> list[str]:
        """``count`` distinct URLs (synthetic mode answers any URL at once)."""
        return [f"https://example.com/{tag}/{i}" for i in range(count)]


def start_server(*args: str) -> ServerProcess:
    """Run ``riptide-sync serve --port 0 ARGS`` and wait for its "listening on" line."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "riptide_sync.cli", "serve", "--port", "0", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on " in line:
            return ServerProcess(line.rsplit(" ", 1)[1].strip(), proc)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the server did not start: {''.join(lines)[-2000:]}")


def stop_server(server: ServerProcess) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(5)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
    if server.proc.stdout is not None:
        server.proc.stdout.close()


class ScriptResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


def run_script(source: str, *args: str, timeout: float = 60, env: dict[str, str] | None = None,
               python: str | None = None) -> ScriptResult:
    """Run ``source`` (dedented) in a fresh interpreter; warnings are errors there too."""
    full_env = {**os.environ, "PYTHONWARNINGS": "error", **(env or {})}
    full_env.pop("PYTHONDEVMODE", None)
    started = time.monotonic()
    done = subprocess.run(
        [python or sys.executable, "-c", textwrap.dedent(source), *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env=full_env,
    )
    return ScriptResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def check(result: ScriptResult) -> str:
    """The script's stdout; fails the test with both streams when it exited non-zero."""
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n"
        f"{result.stderr[-3000:]}"
    )
    return result.stdout
