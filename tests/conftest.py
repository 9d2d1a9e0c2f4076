"""Shared fixtures: a clean environment and the local server (riptide_sync.server).

- ``server``: one default server for the whole session (read-only use, please: no faults).
- ``make_server(**config)``: a fresh server with ``ServerConfig(**config)``; pass
  ``faults=Faults(...)`` for fault scenarios. Every server it made is shut down (threads
  joined, connections closed) when the test ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # The server extra is imported only by tests that use these fixtures.
    from riptide_sync.server import RunningServer


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove proxy settings (requests honours them) and our own RIPTIDE_* variables."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.endswith("_PROXY") or upper == "NO_PROXY" or upper.startswith("RIPTIDE_"):
            monkeypatch.delenv(name, raising=False)


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
