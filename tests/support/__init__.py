"""Helpers shared by the test suites (imported as ``support``: tests/conftest.py puts
``tests/`` on ``sys.path``, as pytest's default import mode does for every conftest).

- ``support.UNIT`` / ``support.MS``: the time scale of sleeps and deadlines.
- ``support.receive_until_summary(source, timeout)``: drain a transport's event source.
- ``support.made_and_closed(make, close)``: the body of a "make several, close all" fixture.
- ``support.clean_env()``: an environment for a child process without our RIPTIDE_*
  settings or proxies (``is_scrubbed`` is the rule, also the ``clean_environ`` fixture's).
- ``support.leaks``: threads and file descriptors left behind.
- ``support.loopback``: a listening socket on 127.0.0.1 with its accept thread.
- ``support.ws_peer``: a scripted WebSocket server (websockets' sans-I/O protocol).
- ``support.queue_race``: the bounded queue's producer/consumer race, at full speed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from typing import Any, TypeVar

T = TypeVar("T")

UNIT = float(os.environ.get("RIPTIDE_TEST_TIME_UNIT", "1.0"))
"""Seconds per time unit: scale every sleep and deadline on slow machines
(``RIPTIDE_TEST_TIME_UNIT=2``). Read once, at import, before the ``clean_environ`` fixture
removes the RIPTIDE_* variables."""

MS = UNIT / 1000
"""One millisecond, scaled."""


def is_scrubbed(name: str) -> bool:
    """True for the environment variables a test must not inherit: our own RIPTIDE_*
    settings and the proxy variables (requests honours them; NO_PROXY included)."""
    upper = name.upper()
    return upper.startswith("RIPTIDE_") or upper.endswith("_PROXY")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the scrubbed variables, plus ``extra``: for a
    child process (``subprocess.run(..., env=clean_env(RIPTIDE_BASE_URL=url))``)."""
    env = {name: value for name, value in os.environ.items() if not is_scrubbed(name)}
    env.update(extra)
    return env


def receive_until_summary(source: Any, timeout: float) -> list[Any]:
    """Receive events from an ``EventSource`` (``receive(timeout)``, seconds each) until a
    summary; return them all, the summary last."""
    events = []
    while True:
        event = source.receive(timeout)
        events.append(event)
        if event.event_type == "summary":
            return events


def made_and_closed(make: Callable[..., T], close: Callable[[T], None]) -> Generator[Callable[..., T], None, list[T]]:
    """A factory fixture's body: ``yield from made_and_closed(Peer, Peer.stop)`` gives the
    test ``make``, keeps what it made, closes each in order when the test ends, and returns
    them (``made = yield from ...``) for checks after the close."""
    made: list[T] = []

    def start(*args: Any, **kwargs: Any) -> T:
        thing = make(*args, **kwargs)
        made.append(thing)
        return thing

    yield start
    for thing in made:
        close(thing)
    return made
