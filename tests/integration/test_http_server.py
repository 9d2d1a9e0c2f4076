"""HTTP transports, batch and health against the local RipTide server (riptide_sync.server)."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import pytest

pytest.importorskip("aiohttp")

from riptide_sync import RipTideClient  # noqa: E402
from riptide_sync._config import ClientConfig  # noqa: E402
from riptide_sync._http import (  # noqa: E402
    NDJSONTransport,
    SSETransport,
    crawl_batch,
    get_health,
    make_session,
)
from riptide_sync._transport import StreamStats  # noqa: E402
from riptide_sync.exceptions import (  # noqa: E402
    APIError,
    AuthenticationError,
    RateLimitError,
    ServerError,
    StreamConnectionError,
    StreamTimeoutError,
)
from riptide_sync.models import StreamingResult  # noqa: E402

WAIT = 10.0
"""Seconds any single receive may take before a test fails instead of hanging."""

TRANSPORTS = {"ndjson": NDJSONTransport, "sse": SSETransport}


class Harness:
    """A config, session and one transport of the given kind; closed at teardown."""

    def __init__(self, base_url: str, kind: str, **config: object) -> None:
        self.config = ClientConfig(base_url=base_url, **config)  # type: ignore[arg-type]
        self.session = make_session(self.config)
        self.stats = StreamStats()
        self.transport = TRANSPORTS[kind](self.config, self.session, self.stats)

    def crawl(self, urls: list[str], options: dict | None = None) -> list[StreamingResult]:
        """Every event of one request, through its summary."""
        source = self.transport.open_crawl(urls, options)
        events = []
        while not events or events[-1].event_type != "summary":
            events.append(source.receive(WAIT))
        return events

    def close(self) -> None:
        self.transport.close()
        self.session.close()


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(base_url: str, kind: str, **config: object) -> Harness:
        item = Harness(base_url, kind, **config)
        made.append(item)
        return item

    yield make
    for item in made:
        item.close()


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
def test_transport_crawls_demo_site_each_index_once_then_summary(server, harness, kind):
    """Each demo URL's index arrives once in a result, then exactly one summary."""
    urls = server.demo_urls()
    run = harness(server.base_url, kind)
    events = run.crawl(urls, {"cache_mode": "bypass"})
    kinds = [e.event_type for e in events]
    assert kinds[0] == "metadata"
    assert kinds.count("summary") == 1 and kinds[-1] == "summary"
    assert "error" not in kinds
    results = [e for e in events if e.event_type == "result"]
    assert sorted(e.index for e in results) == list(range(len(urls)))
    for event in results:
        assert event.result is not None and event.result.url == urls[event.index]
        assert set(event.data) >= {"index", "result"}
    summary = events[-1].data
    assert summary["total_urls"] == len(urls)
    assert summary["successful"] + summary["failed"] == len(urls)
    assert run.transport.session_id == events[0].data["request_id"]
    assert run.stats.messages == len(events)
    assert run.stats.bytes_received > 0
    if kind == "sse":
        assert set(kinds) <= {"metadata", "progress", "result", "summary"}
        assert "progress" in kinds  # SSE progress and status both arrive as progress


def test_transports_agree_through_the_client(server):
    """crawl_ndjson and crawl_sse (and crawl_websocket when present) see the same results."""
    urls = server.article_urls()[:8]
    names = ["crawl_ndjson", "crawl_sse"]
    try:
        from riptide_sync._ws import WebSocketTransport  # noqa: F401
    except ImportError:
        pass
    else:
        names.append("crawl_websocket")
    seen = {}
    with RipTideClient(server.base_url, retry=None) as client:
        for name in names:
            per_index = {}
            summaries = []
            with getattr(client.streaming, name)(urls, options={"cache_mode": "bypass"}) as stream:
                for event in stream:
                    if event.event_type == "result":
                        assert event.data["index"] not in per_index
                        per_index[event.data["index"]] = event.data["result"]["url"]
                    elif event.event_type == "summary":
                        summaries.append(event.data)
            assert len(summaries) == 1, name
            assert summaries[0]["successful"] == len(urls), name
            seen[name] = per_index
    expected = dict(enumerate(urls))
    for name in names:
        assert seen[name] == expected, name


def test_client_batch_and_health_against_server(server):
    """client.crawl returns results in request order; client.health a typed report."""
    urls = server.article_urls()[:5]
    with RipTideClient(server.base_url, retry=None) as client:
        response = client.crawl(urls, {"cache_mode": "bypass"})
        health = client.health()
    assert [r.url for r in response.results] == urls
    assert response.total_urls == 5 and response.successful + response.failed == 5
    assert health.status in ("healthy", "degraded") and health.healthy


def test_crawl_batch_split_against_server(server):
    """A list longer than the per-request limit is split and merged, in request order."""
    urls = server.article_urls()[:7]
    config = ClientConfig(base_url=server.base_url, max_urls_per_request=3)
    with make_session(config) as session:
        response = crawl_batch(session, config, urls, {"cache_mode": "bypass"})
        health = get_health(session, config)
    assert [r.url for r in response.results] == urls
    assert response.total_urls == 7
    assert response.successful + response.failed == 7
    assert response.statistics.cache_hit_rate == response.from_cache / 7
    assert sum(response.statistics.gate_decisions.model_dump().values()) <= 7
    assert health.healthy


def test_ndjson_cut_mid_line_raises_connection_error(make_server, harness):
    """The server's cut_ndjson_after fault: a mid-line end raises StreamConnectionError."""
    srv = make_server(synthetic_doc_size=200, faults=_faults(cut_ndjson_after=2))
    run = harness(srv.base_url, "ndjson")
    source = run.transport.open_crawl(_urls(srv, 4), None)
    assert [source.receive(WAIT).event_type for _ in range(2)] == ["metadata", "result"]
    with pytest.raises(StreamConnectionError, match="mid-message"):
        source.receive(WAIT)


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
def test_stream_dropped_connection_raises_connection_error(make_server, harness, kind):
    """A connection aborted mid-stream (drop_after) raises StreamConnectionError."""
    srv = make_server(synthetic_doc_size=200, faults=_faults(drop_after=2))
    run = harness(srv.base_url, kind)
    source = run.transport.open_crawl(_urls(srv, 5), None)
    with pytest.raises(StreamConnectionError):
        for _ in range(20):
            source.receive(WAIT)


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
def test_stream_frozen_server_times_out_and_close_is_prompt(make_server, harness, kind):
    """A frozen stream times out per receive(timeout); close() from another thread wakes it."""
    srv = make_server(synthetic_doc_size=200, faults=_faults(freeze_after=1))
    run = harness(srv.base_url, kind)
    source = run.transport.open_crawl(_urls(srv, 3), None)
    while source.receive(WAIT).event_type != "result":
        pass
    with pytest.raises(StreamTimeoutError):
        source.receive(0.2)
    second = run.transport.open_crawl(_urls(srv, 3), None)  # not frozen: first request only
    assert second.receive(WAIT).event_type == "metadata"
    timer = threading.Timer(0.1, run.transport.close)
    timer.start()
    started = time.monotonic()
    with pytest.raises(StreamConnectionError):
        while True:
            second.receive(WAIT)
    timer.join()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
def test_stream_rate_limited_then_accepted(make_server, harness, kind):
    """reject_first: the first request gets RateLimitError with retry_after, the next works."""
    srv = make_server(synthetic_doc_size=100, faults=_faults(reject_first=1, retry_after=2))
    run = harness(srv.base_url, kind)
    with pytest.raises(RateLimitError) as info:
        run.transport.open_crawl(_urls(srv, 2), None)
    assert info.value.status_code == 429 and info.value.retry_after == 2.0
    assert info.value.error_type == "rate_limited"
    assert run.crawl(_urls(srv, 2))[-1].event_type == "summary"


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
def test_stream_auth_required(make_server, harness, kind):
    """With keys on, no key gives AuthenticationError (401, string error); the key works."""
    srv = make_server(synthetic_doc_size=100, api_keys=("secret-1",))
    anonymous = harness(srv.base_url, kind)
    with pytest.raises(AuthenticationError) as info:
        anonymous.transport.open_crawl(_urls(srv, 1), None)
    assert info.value.status_code == 401 and info.value.message
    keyed = harness(srv.base_url, kind, api_key="secret-1")
    assert keyed.crawl(_urls(srv, 1))[-1].event_type == "summary"


def test_stream_validation_errors_map_per_surface(server, harness):
    """Empty URL list: NDJSON 400 string error (variant A); SSE 500 event-stream error body."""
    with pytest.raises(APIError) as info:
        harness(server.base_url, "ndjson").transport.open_crawl([], None)
    assert info.value.status_code == 400
    assert "empty" in info.value.message
    with pytest.raises(ServerError) as info:
        harness(server.base_url, "sse").transport.open_crawl([], None)
    assert info.value.status_code == 500
    assert info.value.error_type == "validation_error"


def _faults(**kwargs: object) -> object:
    from riptide_sync.server import Faults

    return Faults(**kwargs)  # type: ignore[arg-type]


def _urls(srv: object, n: int) -> list[str]:
    return [f"https://synthetic.example/{i}" for i in range(n)]
