"""Shared fixtures: a clean environment and the local server (riptide_sync.server).

- ``server``: one default server for the whole session (read-only use, please: no faults).
- ``make_server(**config)``: a fresh server with ``ServerConfig(**config)``; pass
  ``faults=Faults(...)`` for fault scenarios. Every server it made is shut down (threads
  joined, connections closed) when the test ends.
- ``make_peer(script, **options)``: a scripted WebSocket server on loopback
  (``support.ws_peer.Peer``), stopped when the test ends.

The helpers shared by the suites (time unit, leak checks, loopback servers) are the
``support`` package next to this file (tests/support/); pytest puts this folder on
``sys.path`` when it loads this conftest, so every test module can import it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from support import is_scrubbed, made_and_closed

if TYPE_CHECKING:  # The server extra is imported only by tests that use these fixtures.
    from riptide_sync.server import RunningServer
    from support.ws_peer import Peer


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove proxy settings (requests honours them) and our own RIPTIDE_* variables."""
    for name in list(os.environ):
        if is_scrubbed(name):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def lanes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """NDJSON/SSE parallel streams open their other lanes after the first result however
    fast the server answers (``riptide_sync._driver.LANE_DELAY`` = 0): for the tests of
    the parallel machinery, which run against the fast local server."""
    from riptide_sync import _driver

    monkeypatch.setattr(_driver, "LANE_DELAY", 0.0)


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """A local server with the default configuration, shared by the whole session."""
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig()) as running:
        yield running


@pytest.fixture
def make_server() -> Iterator[Callable[..., RunningServer]]:
    """Start servers with custom settings: ``make_server(ping_interval=0.2, faults=Faults(...))``."""
    from riptide_sync.server import ServerConfig, serve_in_thread

    with contextlib.ExitStack() as stack:

        def start(**config: Any) -> RunningServer:
            return stack.enter_context(serve_in_thread(ServerConfig(**config)))

        yield start


@pytest.fixture
def make_peer() -> Iterator[Callable[..., Peer]]:
    """Start scripted WebSocket peers: ``make_peer(script, welcome=False)``; all are stopped
    (connections aborted, threads joined) when the test ends."""
    from support.ws_peer import Peer  # websockets (dev extra) only where a peer is used

    yield from made_and_closed(Peer, Peer.stop)
