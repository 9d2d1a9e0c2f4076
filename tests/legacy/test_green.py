"""The client under gevent and eventlet monkey-patching, each scenario in a fresh
interpreter (tests/legacy/green_scenarios.py): crawls, greenlets sharing a client,
``break``, ``close()`` from another greenlet and Ctrl-C within a second, and what
cooperative scheduling does to keepalive.

Before the fix, eventlet's ``close()`` of an NDJSON/SSE stream blocked in a read failed
with "type object 'GreenSocket' has no attribute 'shutdown'" and the read went on until the
slow page answered (1.2 s instead of at once).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from legacy_helpers import REPO

SCRIPT = os.path.join(REPO, "tests", "legacy", "green_scenarios.py")
LIBS = ["gevent", "eventlet"]


def scenario(lib: str, name: str, base_url: str, *urls: str, timeout: float = 60) -> str:
    pytest.importorskip(lib)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run([sys.executable, SCRIPT, lib, name, base_url, *urls], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{lib} {name}: exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout




@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", ["crawl", "concurrent", "break", "close"])
def test_scenario(lib, name, server):
    out = scenario(lib, name, server.base_url, *server.article_urls()[:4])
    assert "ok" in out


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("transport", ["websocket", "ndjson", "sse"])
def test_ctrl_c_ends_a_blocked_stream_within_a_second(lib, transport, server):
    pytest.importorskip(lib)
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.Popen([sys.executable, SCRIPT, lib, "ctrl_c", server.base_url, transport],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("ready"), ready + proc.stderr.read()
        time.sleep(0.2)  # blocked on the slow page (1.5 s) now
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline()
        assert proc.wait(5) == 0
        # The script prints time.monotonic() (one clock for the machine) once the
        # KeyboardInterrupt reached it and the stream was closed.
        assert line.startswith("interrupted"), line + proc.stderr.read()
        assert float(line.split()[1]) - sent < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("lib", LIBS)
def test_a_consumer_that_never_yields_delays_ping_answers(lib, make_server):
    """Cooperative scheduling: the reader greenlet runs only when the consumer yields.

    A consumer that computes for 0.8 s per result without yielding leaves the server's
    pings unanswered; a server with a 0.5 s pong timeout cuts, and the stream resumes
    (nothing lost, but a reconnect). Yielding in the loop (``gevent.sleep(0)``,
    ``eventlet.sleep(0)``) lets the reader answer: no reconnect. README "gevent and
    eventlet" says what to set.
    """
    # A peer that pings during a crawl and enforces a pong timeout (the lenient local
    # server; the real one does neither, but proxies and other servers may).
    server = make_server(ping_interval=0.2, pong_timeout=0.5, ping_during_crawl=True)
    urls = server.article_urls()[:2]
    busy = scenario(lib, "keepalive_busy", server.base_url, *urls)
    assert "reconnects=0" not in busy, busy
    yielding = scenario(lib, "keepalive_yielding", server.base_url, *urls)
    assert "ok keepalive reconnects=0" in yielding, yielding
