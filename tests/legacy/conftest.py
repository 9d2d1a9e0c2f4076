"""Fixtures of the legacy suite (helpers in legacy_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from legacy_helpers import ServerProcess, start_server, stop_server


@pytest.fixture(scope="session")
def server_process() -> Iterator[ServerProcess]:
    """A synthetic-mode server (no fetching: every URL succeeds at once) in its own process."""
    server = start_server("--synthetic-size", "512")
    try:
        yield server
    finally:
        stop_server(server)
