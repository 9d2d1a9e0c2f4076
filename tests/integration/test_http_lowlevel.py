"""HTTP transports over real loopback against tiny raw-socket servers written here.

Each test scripts the bytes a server sends (chunked or not, with pauses, cut mid-line,
reset, stalled) so the client's reading, timeouts, closing and error mapping are checked
on real sockets, without the local RipTide server.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Callable, Iterator

import pytest

from riptide_sync._config import ClientConfig
from riptide_sync._http import (
    NDJSONTransport,
    SSETransport,
    crawl_batch,
    get_health,
    make_session,
)
from riptide_sync._transport import StreamStats
from riptide_sync.exceptions import (
    AuthenticationError,
    NotFoundError,
    ProtocolViolationError,
    RateLimitError,
    ServerError,
    StreamConnectionError,
    StreamTimeoutError,
)
from support import UNIT, made_and_closed  # the scale of every wait here (RIPTIDE_TEST_TIME_UNIT on a slow machine)
from support.loopback import LoopbackServer

WAIT = 5 * UNIT
"""The longest any step may take before a test fails instead of hanging."""

Handler = Callable[[socket.socket, "Request"], None]


class Request:
    """One HTTP request as the raw server read it."""

    def __init__(self, line: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, _ = line.split(" ", 2)
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return Request(lines[0], headers, body)


class RawServer(LoopbackServer):
    """Accepts connections on 127.0.0.1 and runs ``handler(conn, request)`` for each request,
    one connection at a time; the connection is closed after the handler returns."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(name="raw-server")
        self.handler = handler
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.start()

    def accepted(self, conn: socket.socket) -> None:  # on the accept thread: one at a time
        with conn:
            conn.settimeout(WAIT)
            try:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                self.handler(conn, request)
            except OSError:
                pass  # the client went away: expected in close/reset tests
            except BaseException as exc:  # pragma: no cover - reported by the test
                self.errors.append(exc)

    def close(self) -> None:
        self.stop_accepting(WAIT)
        assert not self.accept_thread.is_alive()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], RawServer]]:
    servers = yield from made_and_closed(RawServer, RawServer.close)
    for server in servers:
        assert not server.errors, server.errors


class Client:
    """A config + session + stats triple, closed at teardown."""

    def __init__(self, base_url: str, **config: object) -> None:
        self.config = ClientConfig(base_url=base_url, **config)  # type: ignore[arg-type]
        self.session = make_session(self.config)
        self.stats = StreamStats()
        self.transports: list[NDJSONTransport | SSETransport] = []

    def ndjson(self) -> NDJSONTransport:
        transport = NDJSONTransport(self.config, self.session, self.stats)
        self.transports.append(transport)
        return transport

    def sse(self) -> SSETransport:
        transport = SSETransport(self.config, self.session, self.stats)
        self.transports.append(transport)
        return transport

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.session.close()


@pytest.fixture
def client() -> Iterator[Callable[..., Client]]:
    yield from made_and_closed(Client, Client.close)


# --- response writing helpers -------------------------------------------------------------


def _head(status: str, content_type: str, *, chunked: bool, extra: str = "") -> bytes:
    framing = "Transfer-Encoding: chunked\r\n" if chunked else "Connection: close\r\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}{extra}\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _send(conn: socket.socket, data: bytes, *, chunked: bool) -> None:
    conn.sendall(_chunk(data) if chunked else data)


def _end(conn: socket.socket, *, chunked: bool) -> None:
    if chunked:
        conn.sendall(b"0\r\n\r\n")


def _reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0): an abrupt connection reset."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _full_response(status: str, body: bytes, content_type: str = "application/json",
                   extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n{extra}\r\n"
    ).encode() + body


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


METADATA = {"total_urls": 2, "request_id": "req-42", "timestamp": "t", "stream_type": "crawl"}


def _result(index: int) -> dict:
    return {
        "index": index,
        "result": {"url": f"https://example.org/{index}", "status": 200},
        "progress": {"completed": index + 1, "total": 2, "success_rate": 1.0},
    }


SUMMARY = {"total_urls": 2, "successful": 2, "failed": 0, "from_cache": 0,
           "total_processing_time_ms": 5, "cache_hit_rate": 0.0}
URLS = ["https://example.org/0", "https://example.org/1"]


# --- reading as it arrives ----------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_ndjson_line_delivered_before_next_is_written(raw_server, client, chunked):
    """Each NDJSON line reaches the caller before the server writes the next one."""
    gates = [threading.Event() for _ in range(3)]

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "application/x-ndjson", chunked=chunked,
                           extra="X-Request-ID: req-42\r\n"))
        lines = [_line(METADATA), _line(_result(1)), _line(_result(0)), _line(SUMMARY)]
        for i, line in enumerate(lines):
            _send(conn, line, chunked=chunked)
            if i < len(gates):
                assert gates[i].wait(WAIT), "the client never saw line %d" % i
        _end(conn, chunked=chunked)

    server = raw_server(handler)
    made = client(server.base_url)
    transport = made.ndjson()
    source = transport.open_crawl(URLS, None)
    kinds = []
    for gate in gates:
        kinds.append(source.receive(WAIT).event_type)  # would time out if held back
        gate.set()
    kinds.append(source.receive(WAIT).event_type)
    assert kinds == ["metadata", "result", "result", "summary"]
    assert transport.session_id == "req-42"
    assert made.stats.messages == 4
    assert made.stats.bytes_received == sum(
        len(x) for x in (_line(METADATA), _line(_result(1)), _line(_result(0)), _line(SUMMARY))
    )
    with pytest.raises(StreamConnectionError, match="after its summary"):
        source.receive(WAIT)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_sse_event_delivered_before_next_with_heartbeats_and_crlf(raw_server, client, chunked):
    """SSE events with CRLF ends and heartbeats each reach the caller before the next."""
    gate = threading.Event()
    events = [
        f"event:metadata\r\ndata:{json.dumps(METADATA)}\r\nretry:5000\r\n\r\n",
        "::heartbeat\r\n\r\n",
        f"event:progress\r\ndata:{json.dumps({'completed': 1, 'total': 1})}\r\nid:0\r\n\r\n",
        f"event: result\r\ndata: {json.dumps(_result(0))}\r\nid: 0\r\n\r\n",
        "::heartbeat\r\n\r\n",
        f"event:complete\r\ndata:{json.dumps(SUMMARY)}\r\nretry:5000\r\n\r\n",
    ]

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "text/event-stream", chunked=chunked))
        for i, event in enumerate(events):
            # Split each event mid-line across two writes (CR and LF apart too).
            cut = event.index("\n")
            _send(conn, event[:cut].encode(), chunked=chunked)
            time.sleep(0.002 * UNIT)
            _send(conn, event[cut:].encode(), chunked=chunked)
            if i == 0:
                assert gate.wait(WAIT), "the client never saw the metadata"
        _end(conn, chunked=chunked)

    server = raw_server(handler)
    made = client(server.base_url)
    transport = made.sse()
    source = transport.open_crawl(URLS[:1], {"cache_mode": "bypass"})
    first = source.receive(WAIT)
    gate.set()
    rest = [source.receive(WAIT) for _ in range(3)]
    assert [e.event_type for e in [first, *rest]] == ["metadata", "progress", "result", "summary"]
    assert rest[1].index == 0
    assert transport.heartbeats == 2
    assert transport.last_event_id == "0"
    assert transport.session_id == "req-42"
    assert made.stats.messages == 4


def test_ndjson_gzip_body_decoded_even_though_identity_was_asked(raw_server, client):
    """A server that gzips the stream anyway is decoded line by line."""
    import zlib

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "application/x-ndjson", chunked=True,
                           extra="Content-Encoding: gzip\r\n"))
        compressor = zlib.compressobj(wbits=31)
        for line in (_line(METADATA), _line(_result(0)), _line(_result(1)), _line(SUMMARY)):
            data = compressor.compress(line) + compressor.flush(zlib.Z_SYNC_FLUSH)
            _send(conn, data, chunked=True)
        _send(conn, compressor.flush(), chunked=True)
        _end(conn, chunked=True)

    server = raw_server(handler)
    source = client(server.base_url).ndjson().open_crawl(URLS, None)
    kinds = [source.receive(WAIT).event_type for _ in range(4)]
    assert kinds == ["metadata", "result", "result", "summary"]


def test_ndjson_request_shape(raw_server, client):
    """open_crawl POSTs urls (options omitted when None) with identity encoding and the key."""

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_full_response("200 OK", _line(METADATA) + _line(SUMMARY),
                                    "application/x-ndjson"))

    server = raw_server(handler)
    made = client(server.base_url, api_key="demo-key-123")
    transport = made.ndjson()
    for options in (None, {"cache_mode": "bypass"}):
        source = transport.open_crawl(URLS, options)
        assert [source.receive(WAIT).event_type for _ in range(2)] == ["metadata", "summary"]
    sse = made.sse()
    sse.open_crawl(URLS, None).close()
    first, second, third = server.requests
    assert (first.method, first.path, second.path, third.path) == (
        "POST", "/crawl/stream", "/crawl/stream", "/crawl/sse"
    )
    assert first.json() == {"urls": URLS}
    assert second.json() == {"urls": URLS, "options": {"cache_mode": "bypass"}}
    assert first.headers["accept-encoding"] == "identity"
    assert first.headers["accept"] == "application/x-ndjson"
    assert third.headers["accept"] == "text/event-stream"
    assert first.headers["x-api-key"] == "demo-key-123"
    assert first.headers["user-agent"].startswith("riptide-sync/")
    assert first.headers["content-type"] == "application/json"


# --- incomplete streams ---------------------------------------------------------------------


def test_ndjson_body_cut_mid_line_is_incomplete(raw_server, client):
    """A body that ends mid-line raises StreamConnectionError (never a silent success)."""

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "application/x-ndjson", chunked=False))
        conn.sendall(_line(METADATA) + _line(_result(0)) + _line(SUMMARY)[:20])

    server = raw_server(handler)
    source = client(server.base_url).ndjson().open_crawl(URLS, None)
    assert source.receive(WAIT).event_type == "metadata"
    assert source.receive(WAIT).event_type == "result"
    with pytest.raises(StreamConnectionError, match="mid-message"):
        source.receive(WAIT)
    with pytest.raises(StreamConnectionError):
        source.receive(WAIT)  # and it stays ended


@pytest.mark.parametrize("transport_name", ["ndjson", "sse"])
def test_stream_eof_without_summary_is_incomplete(raw_server, client, transport_name):
    """A cleanly terminated body without a summary raises StreamConnectionError (§2.4)."""
    if transport_name == "ndjson":
        body = _line(METADATA)
        content_type = "application/x-ndjson"
    else:
        body = f"event:metadata\ndata:{json.dumps(METADATA)}\n\n".encode()
        content_type = "text/event-stream"

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", content_type, chunked=True))
        _send(conn, body, chunked=True)
        _end(conn, chunked=True)

    server = raw_server(handler)
    made = client(server.base_url)
    source = getattr(made, transport_name)().open_crawl(URLS, None)
    assert source.receive(WAIT).event_type == "metadata"
    with pytest.raises(StreamConnectionError, match="before the summary"):
        source.receive(WAIT)


def test_sse_body_cut_mid_event_is_incomplete(raw_server, client):
    """An SSE body ending inside an event (no blank line) raises StreamConnectionError."""

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "text/event-stream", chunked=False))
        conn.sendall(f"event:complete\ndata:{json.dumps(SUMMARY)}\n".encode())

    server = raw_server(handler)
    source = client(server.base_url).sse().open_crawl(URLS, None)
    with pytest.raises(StreamConnectionError, match="mid-message"):
        source.receive(WAIT)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_stream_connection_reset_maps_to_stream_connection_error(raw_server, client, chunked):
    """An abrupt reset mid-body raises StreamConnectionError chained to the socket error."""

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "application/x-ndjson", chunked=chunked))
        _send(conn, _line(METADATA), chunked=chunked)
        time.sleep(0.05 * UNIT)
        if chunked:
            conn.sendall(b"100\r\npartial")  # a chunk promising more than it holds
        _reset(conn)

    server = raw_server(handler)
    source = client(server.base_url).ndjson().open_crawl(URLS, None)
    assert source.receive(WAIT).event_type == "metadata"
    with pytest.raises(StreamConnectionError) as info:
        source.receive(WAIT)
    assert info.value.__cause__ is not None


# --- timeouts and closing ---------------------------------------------------------------------


def _stalling_handler(release: threading.Event) -> Handler:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(_head("200 OK", "application/x-ndjson", chunked=True))
        _send(conn, _line(METADATA), chunked=True)
        release.wait(WAIT)  # then stall: say nothing more

    return handler


def test_receive_timeout_raises_stream_timeout_error(raw_server, client):
    """receive(timeout) raises StreamTimeoutError after about timeout on a stalled server."""
    release = threading.Event()
    server = raw_server(_stalling_handler(release))
    source = client(server.base_url).ndjson().open_crawl(URLS, None)
    assert source.receive(WAIT).event_type == "metadata"
    started = time.monotonic()
    with pytest.raises(StreamTimeoutError) as info:
        source.receive(0.2 * UNIT)
    elapsed = time.monotonic() - started
    release.set()
    assert 0.15 * UNIT <= elapsed < 2 * UNIT
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(StreamConnectionError):
        source.receive(WAIT)  # a timed-out HTTP source is finished


def test_receive_none_uses_idle_limit_from_config(raw_server, client, monkeypatch):
    """receive(None) still has a finite limit: the transport's idle timeout."""
    import riptide_sync._http.streams as streams

    monkeypatch.setattr(streams, "MIN_IDLE_TIMEOUT", 0.0)
    release = threading.Event()
    server = raw_server(_stalling_handler(release))
    source = client(server.base_url, timeout=0.2 * UNIT).ndjson().open_crawl(URLS, None)
    source.receive(None)
    with pytest.raises(StreamTimeoutError):
        source.receive(None)
    release.set()


@pytest.mark.parametrize("close", ["source", "transport"])
def test_close_from_another_thread_unblocks_receive(raw_server, client, close):
    """close() on another thread wakes a receive() blocked on a silent server promptly."""
    release = threading.Event()
    server = raw_server(_stalling_handler(release))
    transport = client(server.base_url).ndjson()
    source = transport.open_crawl(URLS, None)
    assert source.receive(WAIT).event_type == "metadata"
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            source.receive(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.1 * UNIT)  # let it block in the read
    started = time.monotonic()
    (source if close == "source" else transport).close()
    reader.join(WAIT)
    elapsed = time.monotonic() - started
    release.set()
    assert not reader.is_alive()
    assert elapsed < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], StreamConnectionError)
    assert "closed" in str(outcome[0])
    source.close()  # idempotent


def test_close_before_reading_releases_response(raw_server, client):
    """close() with no reader closes the response; later receive() raises; open fails."""
    release = threading.Event()
    server = raw_server(_stalling_handler(release))
    transport = client(server.base_url).ndjson()
    source = transport.open_crawl(URLS, None)
    transport.close()
    release.set()
    with pytest.raises(StreamConnectionError, match="closed"):
        source.receive(WAIT)
    with pytest.raises(StreamConnectionError, match="closed"):
        transport.open_crawl(URLS, None)


def test_connection_refused_maps_to_stream_connection_error(client):
    """A refused connection raises StreamConnectionError from open_crawl, chained."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    transport = client(f"http://127.0.0.1:{port}").ndjson()
    with pytest.raises(StreamConnectionError) as info:
        transport.open_crawl(URLS, None)
    assert info.value.__cause__ is not None


def test_response_headers_timeout_maps_to_stream_timeout_error(raw_server, client):
    """A server that never answers the request times out as StreamTimeoutError."""
    release = threading.Event()

    def handler(conn: socket.socket, request: Request) -> None:
        release.wait(WAIT)

    server = raw_server(handler)
    transport = client(server.base_url, timeout=0.2 * UNIT).sse()
    with pytest.raises(StreamTimeoutError):
        transport.open_crawl(URLS, None)
    release.set()


# --- error statuses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response, cls, error_type, message",
    [
        (
            _full_response(
                "401 Unauthorized",
                b'{"error":"Unauthorized","message":"Missing API key"}',
                extra="WWW-Authenticate: Bearer\r\nX-Request-ID: rid-1\r\n",
            ),
            AuthenticationError, "Unauthorized", "Missing API key",
        ),
        (
            _full_response(
                "500 Internal Server Error",
                b'event: error\ndata: {"error":{"type":"validation_error","message":"Validation error: At least one URL is required","retryable":false}}\n\n',
                "text/event-stream",
                extra="X-Request-ID: rid-1\r\n",
            ),
            ServerError, "validation_error", "Validation error: At least one URL is required",
        ),
        (
            _full_response(
                "429 Too Many Requests",
                b'{"error":{"type":"rate_limited","message":"Rate limit exceeded: x","retryable":false,"status":429}}',
                extra="Retry-After: 60\r\nX-Request-ID: rid-1\r\n",
            ),
            RateLimitError, "rate_limited", "Rate limit exceeded: x",
        ),
        (
            _head("500 Internal Server Error", "application/x-ndjson", chunked=True,
                  extra="X-Request-ID: rid-1\r\n")
            + _chunk(b'{"error":{"type":"validation_error","message":"m","retryable":false}}\n')
            + b"0\r\n\r\n",
            ServerError, "validation_error", "m",
        ),
        (
            _full_response("404 Not Found", b"", extra="X-Request-ID: rid-1\r\n"),
            NotFoundError, None, "Not Found",
        ),
    ],
)
def test_open_crawl_error_status_maps_to_api_error(raw_server, client, response, cls,
                                                   error_type, message):
    """A non-200 answer to a stream request raises the typed APIError with its details."""
    server = raw_server(lambda conn, request: conn.sendall(response))
    transport = client(server.base_url).ndjson()
    with pytest.raises(cls) as info:
        transport.open_crawl(URLS, None)
    exc = info.value
    assert (exc.error_type, exc.message, exc.request_id) == (error_type, message, "rid-1")
    assert exc.status_code == int(response.split(b" ", 2)[1])
    if cls is RateLimitError:
        assert exc.retry_after == 60.0


# --- batch and health ------------------------------------------------------------------------


def _batch_handler(conn: socket.socket, request: Request) -> None:
    urls = request.json()["urls"]
    body = {
        "total_urls": len(urls),
        "successful": len(urls),
        "failed": 0,
        "from_cache": 1,
        "results": [{"url": u, "status": 200, "gate_decision": "raw"} for u in urls],
        "statistics": {
            "total_processing_time_ms": 10 * len(urls),
            "avg_processing_time_ms": 10.0,
            "gate_decisions": {"raw": len(urls), "probes_first": 0, "headless": 0, "cached": 0},
            "cache_hit_rate": 1 / len(urls),
        },
    }
    conn.sendall(_full_response("200 OK", json.dumps(body).encode()))


def test_crawl_batch_splits_long_lists_and_merges(raw_server, client):
    """A list over max_urls_per_request is sent in order in chunks and merged into one."""
    server = raw_server(_batch_handler)
    made = client(server.base_url, max_urls_per_request=2)
    urls = [f"https://example.org/{i}" for i in range(5)]
    response = crawl_batch(made.session, made.config, urls, {"cache_mode": "bypass"})
    assert [r.json()["urls"] for r in server.requests] == [urls[:2], urls[2:4], urls[4:]]
    assert all(r.json()["options"] == {"cache_mode": "bypass"} for r in server.requests)
    assert all(r.path == "/crawl" for r in server.requests)
    assert [r.url for r in response.results] == urls
    assert (response.total_urls, response.successful, response.from_cache) == (5, 5, 3)
    assert response.statistics.total_processing_time_ms == 50
    assert response.statistics.gate_decisions.raw == 5
    assert response.statistics.cache_hit_rate == pytest.approx(3 / 5)


def test_crawl_batch_single_request_returned_as_is(raw_server, client):
    """A list within the limit is one request without options, returned unchanged."""
    server = raw_server(_batch_handler)
    made = client(server.base_url)
    response = crawl_batch(made.session, made.config, URLS, None)
    assert server.requests[0].json() == {"urls": URLS}
    assert response.statistics.cache_hit_rate == 0.5


def test_crawl_batch_error_status_raises(raw_server, client):
    """A 400 ApiError on batch raises APIError with the server's type and message."""
    body = b'{"error":{"type":"invalid_url","message":"Invalid URL: x","retryable":false,"status":400}}'
    server = raw_server(lambda conn, request: conn.sendall(_full_response("400 Bad Request", body)))
    made = client(server.base_url)
    with pytest.raises(Exception) as info:
        crawl_batch(made.session, made.config, URLS, None)
    assert (info.value.status_code, info.value.error_type) == (400, "invalid_url")


def test_crawl_batch_unreadable_200_is_protocol_violation(raw_server, client):
    """A 200 whose body is not a crawl response raises ProtocolViolationError."""
    server = raw_server(lambda conn, request: conn.sendall(_full_response("200 OK", b"<html>")))
    made = client(server.base_url)
    with pytest.raises(ProtocolViolationError):
        crawl_batch(made.session, made.config, URLS, None)


HEALTH = {"status": "healthy", "version": "0.9.0", "timestamp": "t", "uptime": 5,
          "dependencies": {"redis": {"status": "healthy", "message": None,
                                     "response_time_ms": None, "last_check": "t"},
                           "headless_service": None},
          "metrics": {"thread_count": 4}}


@pytest.mark.parametrize("status, health_status", [("200 OK", "healthy"),
                                                   ("200 OK", "degraded"),
                                                   ("503 Service Unavailable", "unhealthy")])
def test_get_health_returns_report_even_when_unhealthy(raw_server, client, status, health_status):
    """/healthz 200 and 503 reports are results (503 unhealthy is not an exception)."""
    body = json.dumps({**HEALTH, "status": health_status}).encode()
    server = raw_server(lambda conn, request: conn.sendall(_full_response(status, body)))
    made = client(server.base_url)
    health = get_health(made.session, made.config)
    assert health.status == health_status
    assert health.healthy is (health_status != "unhealthy")
    assert (server.requests[0].method, server.requests[0].path) == ("GET", "/healthz")


def test_get_health_capacity_503_raises_rate_limit(raw_server, client):
    """A 503 with an error body (not a report) raises RateLimitError with Retry-After."""
    body = b'{"error":{"type":"dependency_error","message":"Dependency unavailable","retryable":true,"status":503}}'
    server = raw_server(lambda conn, request: conn.sendall(
        _full_response("503 Service Unavailable", body, extra="Retry-After: 30\r\n")))
    made = client(server.base_url)
    with pytest.raises(RateLimitError) as info:
        get_health(made.session, made.config)
    assert info.value.retry_after == 30.0


def test_get_health_200_without_report_is_protocol_violation(raw_server, client):
    """A 200 that is not a health report raises ProtocolViolationError."""
    server = raw_server(lambda conn, request: conn.sendall(_full_response("200 OK", b"ok", "text/plain")))
    made = client(server.base_url)
    with pytest.raises(ProtocolViolationError):
        get_health(made.session, made.config)
