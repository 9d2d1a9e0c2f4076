"""The WebSocket transport against the local RipTide server over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from riptide_sync._config import ClientConfig
from riptide_sync._transport import StreamStats
from riptide_sync._ws import WebSocketTransport
from riptide_sync.exceptions import (
    AuthenticationError,
    KeepaliveTimeoutError,
    RateLimitError,
    StreamConnectionError,
)
from riptide_sync.server import Faults
from support import UNIT, receive_until_summary
from support.leaks import still_there, threads_named


def synthetic_urls(count: int) -> list[str]:
    return [f"https://synthetic.example/ws/{i}" for i in range(count)]


def make_transport(server, **kw) -> WebSocketTransport:
    kw.setdefault("timeout", 10 * UNIT)
    return WebSocketTransport(ClientConfig(base_url=server.base_url, **kw), StreamStats())


def drain(source, timeout: float = 10 * UNIT) -> list:
    return receive_until_summary(source, timeout)


@pytest.fixture(autouse=True)
def no_reader_left_behind():
    """Every test ends with no reader thread still running."""
    yield
    if still_there(lambda: threads_named("riptide-ws-reader"), within=1.0):
        pytest.fail("a riptide-ws-reader thread is still running")


def test_ws_crawl_demo_articles_yields_every_result(server) -> None:
    """Crawling the demo site: welcome, metadata, one result per URL, summary."""
    urls = server.article_urls()[:10]
    with make_transport(server) as transport:
        events = drain(transport.open_crawl(urls, {"cache_mode": "bypass"}))
        assert [e.event_type for e in events[:2]] == ["welcome", "metadata"]
        indices = sorted(e.data["index"] for e in events if e.event_type == "result")
        assert indices == list(range(10))
        assert events[-1].data["successful"] == 10
        assert transport.session_id == events[0].data["session_id"]


def test_ws_request_ping_and_status_between_crawls(make_server) -> None:
    """ping and status are answered on the crawl's socket, with the same session id."""
    srv = make_server(synthetic_doc_size=64)
    with make_transport(srv) as transport:
        drain(transport.open_crawl(synthetic_urls(3), None))
        pong = transport.request("ping", timeout=5 * UNIT)
        status = transport.request("status", timeout=5 * UNIT)
        assert pong.event_type == "pong" and pong.data["session_id"] == transport.session_id
        assert status.data["is_healthy"] is True and status.data["message_count"] >= 6
        assert transport.stats.last_rtt_ms is not None
        second = drain(transport.open_crawl(synthetic_urls(2), None))
        assert second[0].event_type == "metadata"  # same socket: no second welcome
        assert srv.counters.ws_open <= 1


def test_ws_keepalive_survives_consumer_stall(make_server) -> None:
    """Server pings every 0.2 s with a 0.5 s pong deadline; a 2 s stall is survived."""
    srv = make_server(synthetic_doc_size=200, ping_interval=0.2, pong_timeout=0.5,
                      max_urls_per_request=2000)
    with make_transport(srv, queue_size=100) as transport:
        source = transport.open_crawl(synthetic_urls(2000), None)
        assert source.receive(10 * UNIT).event_type == "welcome"
        time.sleep(2 * UNIT)
        events = drain(source)
        assert sum(e.event_type == "result" for e in events) == 2000
        assert transport.stats.spilled > 0 and transport.stats.queue_high_water <= 100


def test_ws_frozen_server_detected_by_keepalive(make_server) -> None:
    """A server that freezes mid-crawl raises KeepaliveTimeoutError in time."""
    srv = make_server(synthetic_doc_size=64, faults=Faults(freeze_after=2))
    with make_transport(srv, ping_interval=0.2 * UNIT, ping_timeout=0.3 * UNIT) as transport:
        source = transport.open_crawl(synthetic_urls(10), None)
        kinds = [source.receive(10 * UNIT).event_type for _ in range(4)]
        assert kinds == ["welcome", "metadata", "result", "result"]
        started = time.monotonic()
        with pytest.raises(KeepaliveTimeoutError):
            source.receive(10 * UNIT)
        assert time.monotonic() - started < 0.5 * UNIT + 0.3 * UNIT


def test_ws_dropped_connection_raises_after_queued_events(make_server) -> None:
    """A connection dropped after 3 results delivers them, then StreamConnectionError."""
    srv = make_server(synthetic_doc_size=64, faults=Faults(drop_after=3))
    with make_transport(srv) as transport:
        source = transport.open_crawl(synthetic_urls(10), None)
        kinds = []
        with pytest.raises(StreamConnectionError):
            while True:
                kinds.append(source.receive(10 * UNIT).event_type)
        assert kinds == ["welcome", "metadata", "result", "result", "result"]
        source.close()
        again = drain(transport.open_crawl(synthetic_urls(2), None))
        assert again[0].event_type == "welcome"  # reconnected


def test_ws_malformed_frame_is_an_error_event(make_server) -> None:
    """A malformed frame from the server becomes an error event; the crawl completes."""
    srv = make_server(synthetic_doc_size=64, faults=Faults(malformed_after=1))
    with make_transport(srv) as transport:
        events = drain(transport.open_crawl(synthetic_urls(3), None))
        errors = [e for e in events if e.event_type == "error"]
        assert len(errors) == 1 and errors[0].data["error_type"] == "malformed_message"
        assert sum(e.event_type == "result" for e in events) == 3


def test_ws_handshake_429_and_401_map_to_errors(make_server) -> None:
    """A 429 handshake carries Retry-After; a missing API key is an AuthenticationError."""
    srv = make_server(faults=Faults(reject_first=1, retry_after=3))
    with make_transport(srv) as transport:
        with pytest.raises(RateLimitError) as info:
            transport.open_crawl(synthetic_urls(1), None)
        assert info.value.status_code == 429 and info.value.retry_after == 3.0
    secured = make_server(api_keys=("demo-key-123",), synthetic_doc_size=64)
    with make_transport(secured) as transport:
        with pytest.raises(AuthenticationError) as auth:
            transport.open_crawl(synthetic_urls(1), None)
        assert auth.value.status_code == 401
    with make_transport(secured, api_key="demo-key-123") as transport:
        assert drain(transport.open_crawl(synthetic_urls(1), None))[-1].data["successful"] == 1


def test_ws_close_from_other_thread_mid_stream(make_server) -> None:
    """close() from another thread ends a blocked receive() within 1 s, nothing left."""
    srv = make_server(synthetic_doc_size=64, faults=Faults(freeze_after=1))
    transport = make_transport(srv)
    source = transport.open_crawl(synthetic_urls(5), None)
    for _ in range(3):
        source.receive(10 * UNIT)
    threading.Timer(0.2 * UNIT, transport.close).start()
    started = time.monotonic()
    with pytest.raises(StreamConnectionError, match="stream closed"):
        source.receive(None)
    assert time.monotonic() - started < 0.2 * UNIT + 1.0


CTRL_C_CHILD = textwrap.dedent(
    """
    import sys, time
    from riptide_sync._config import ClientConfig
    from riptide_sync._transport import StreamStats
    from riptide_sync._ws import WebSocketTransport

    transport = WebSocketTransport(ClientConfig(base_url=sys.argv[1]), StreamStats())
    try:
        source = transport.open_crawl([f"https://synthetic.example/{i}" for i in range(50)], None)
        while True:
            event = source.receive(None)  # blocks for ever once the server freezes
            if event.event_type == "result":
                print("streaming", flush=True)
    except KeyboardInterrupt:
        started = time.monotonic()
        transport.close()
        print(f"closed in {time.monotonic() - started:.3f}", flush=True)
        sys.exit(130)
    """
)


def test_ws_ctrl_c_mid_stream_exits_promptly(make_server) -> None:
    """SIGINT to a process blocked mid-stream exits it promptly, no thread traceback."""
    srv = make_server(synthetic_doc_size=64, faults=Faults(freeze_after=2))
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, srv.base_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "streaming"
        time.sleep(0.3 * UNIT)  # now blocked in receive(): the server is frozen
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=5 * UNIT)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert "closed in" in out
    assert float(out.split("closed in")[1].split()[0]) < 1.0
    assert elapsed < 2.0 * UNIT
    assert "Traceback" not in err and "Exception in thread" not in err, err
