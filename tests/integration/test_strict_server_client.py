"""The client against the local server's strict defaults (the real server's behaviour).

The real server reads nothing and pings nothing while a crawl runs (docs/protocol.md §1.8);
these are the places where the client had relied on the local server's old leniency.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("aiohttp")  # the local server (server extra)

from riptide_sync import RipTideClient  # noqa: E402
from riptide_sync.server.demo_site import page_url  # noqa: E402
from support.leaks import threads_named  # noqa: E402


def _ws_threads() -> list[str]:
    return [t.name for t in threads_named(prefix="riptide-ws")]


def test_close_mid_crawl_does_not_wait_for_a_close_echo_section_1_8(make_server):
    """Abandoning a crawl midway closes at once: the server reads nothing before its
    summary, so no Close echo can come, and waiting for one only delays close()."""
    srv = make_server(demo_slow_delay=3.0)
    with RipTideClient(srv.base_url) as client:
        stream = client.streaming.crawl_websocket([page_url("slow")])
        for event in stream:
            if event.event_type == "metadata":
                break
        started = time.monotonic()
        stream.close()
        elapsed = time.monotonic() - started
        assert stream.closed and _ws_threads() == []
    assert elapsed < 0.2, f"close() took {elapsed:.3f} s"


def test_silent_slow_crawl_is_not_a_dead_peer_section_1_8(make_server):
    """A crawl whose one URL takes longer than ping_interval, on a server that neither
    pings nor answers pings meanwhile, completes: silence shorter than ping_interval +
    ping_timeout is not a dead peer."""
    srv = make_server(demo_slow_delay=1.0, ping_interval=0.2)
    with RipTideClient(srv.base_url, ping_interval=0.2, ping_timeout=1.5) as client:
        with client.streaming.crawl_websocket([page_url("slow")]) as stream:
            kinds = [event.event_type for event in stream]
    assert kinds[-1] == "summary" and "result" in kinds
