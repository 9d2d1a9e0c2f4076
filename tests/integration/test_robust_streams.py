"""Issue 12 over real sockets: what a demanding user found from outside.

The WebSocket peer is websockets' sans-I/O ServerProtocol (the scripted Peer of
tests/support/ws_peer.py); the HTTP peers are raw loopback sockets scripted here; the local server is
started with explicit settings for what each test depends on.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from websockets.frames import Frame, Opcode

from riptide_sync import RipTideClient, RetryPolicy
from riptide_sync.exceptions import (
    IncompleteStreamError,
    ProtocolViolationError,
)
from riptide_sync.server import Faults
from support import UNIT
from support.loopback import HTTPServerThread, LoopbackServer, QuietHandler, answer_every_post
from support.ws_peer import PeerConnection, wire

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05, jitter=0.0)


def test_protocol_error_in_first_frame_is_protocol_violation_on_one_connection(make_peer):
    """A masked frame as the server's first frame: ProtocolViolationError (not retried),
    one connection, every time. Failed before: the crawl's send raced the reader's
    teardown and surfaced as a retryable StreamConnectionError ("closed sending to") in
    4-15 of 30 runs, making 2-4 connections."""

    def script(conn: PeerConnection) -> None:
        conn.send_raw(Frame(Opcode.TEXT, b"masked!").serialize(mask=True))
        conn.pump(1 * UNIT)

    for _ in range(12):
        peer = make_peer(script, welcome=False)
        client = RipTideClient(f"http://127.0.0.1:{peer.port}", retry=FAST_RETRY, timeout=5)
        with pytest.raises(IncompleteStreamError) as info:
            list(client.streaming.crawl_websocket(["https://a.example/"]))
        assert isinstance(info.value.__cause__, ProtocolViolationError), repr(info.value.__cause__)
        time.sleep(0.05)
        assert len(peer.connections) == 1
        client.close()
        peer.stop()


def test_summary_short_of_results_resumes_on_a_new_connection(make_server):
    """A summary that counts results never sent: the resume goes out on a new WebSocket,
    not the one that could still deliver them late. Failed before: CrawlSource.close()
    did nothing once the summary had come, and the resume reused the connection."""
    srv = make_server(ping_interval=30.0, faults=Faults(drop_results_for=frozenset(
        {"https://b.example/"})), synthetic_doc_size=100)
    client = RipTideClient(srv.base_url, retry=FAST_RETRY)
    urls = ["https://a.example/", "https://b.example/", "https://c.example/"]
    events = list(client.streaming.crawl_websocket(urls))
    assert sorted(e.data["index"] for e in events if e.event_type == "result") == [0, 1, 2]
    ws = [r for r in srv.request_log if r.transport == "ws"]
    assert [r.urls for r in ws] == [urls, ["https://b.example/"]]
    assert ws[0].connection != ws[1].connection
    client.close()


@pytest.mark.parametrize("transport", ["sse", "ndjson", "websocket"])
def test_every_progress_event_carries_completed_and_total(make_server, transport):
    """SSE `status` events arrive as `progress`; each must carry `completed` and `total`
    (over the caller's list), keeping the server's own fields (`phase`...). Failed before:
    `event.data["completed"]` raised KeyError on a status event."""
    srv = make_server(synthetic_doc_size=50)
    client = RipTideClient(srv.base_url, retry=FAST_RETRY)
    urls = [f"https://example.org/p{i}" for i in range(150)]
    crawl = getattr(client.streaming, f"crawl_{transport}")
    progress = [e.data for e in crawl(urls, parallel=1) if e.event_type == "progress"]
    assert all(isinstance(p["completed"], int) and p["total"] == 150 for p in progress)
    completed = [p["completed"] for p in progress]
    assert completed == sorted(completed)
    if transport == "sse":
        status = [p for p in progress if "phase" in p]
        assert status and all("items_processed" in p for p in status)
    client.close()


class _ChunkServer(HTTPServerThread):
    """POST /crawl on loopback: answers each chunk, but 503 to the 2nd POST (once)."""

    def __init__(self):
        import json as _json

        self.posts: list[list[str]] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = _json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append(body["urls"])
                if len(outer.posts) == 2:
                    self.reply(503, "application/json", b'{"error":{"type":"unavailable","message":"busy"}}')
                else:
                    self.reply(200, "application/json", _json.dumps({
                        "total_urls": len(body["urls"]), "successful": len(body["urls"]),
                        "failed": 0, "results": [{"url": u, "status": 200} for u in body["urls"]],
                    }).encode())

        super().__init__(Handler)

    def stop(self):
        self.close()


def test_batch_retries_the_failed_chunk_only():
    """2 URLs a request, the second POST failing once: chunk 1, chunk 2, chunk 2, chunk 3.
    Failed before: the whole call was retried (chunk 1, chunk 2, chunk 1, chunk 2, ...)."""
    server = _ChunkServer()
    try:
        client = RipTideClient(f"http://127.0.0.1:{server.port}", max_urls_per_request=2,
                               retry=FAST_RETRY)
        urls = [f"https://example.org/{i}" for i in range(5)]
        response = client.crawl(urls)
        assert [r.url for r in response.results] == urls
        assert server.posts == [urls[0:2], urls[2:4], urls[2:4], urls[4:5]]
        client.close()
    finally:
        server.stop()


def test_ping_and_status_on_an_error_reply(make_peer):
    """An `error` answering ping is not a success; one answering status is raised as an
    APIError, not returned as if it were a status. Failed before: success True / the
    error's data returned."""
    from riptide_sync.exceptions import APIError

    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(wire("error", error_type="unknown_request", message="not today"))
        conn.pump(1 * UNIT)

    peer = make_peer(script)
    client = RipTideClient(f"http://127.0.0.1:{peer.port}", timeout=5)
    reply = client.streaming.ping_websocket(peer.url)
    assert reply["success"] is False and "not today" in reply["error"]
    peer2 = make_peer(script)
    with pytest.raises(APIError) as info:
        client.streaming.get_websocket_status(peer2.url)
    assert info.value.error_type == "unknown_request" and "not today" in str(info.value)
    client.close()


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("call", ["websocket", "ndjson", "sse", "batch"])
def test_connection_refused_says_so_plainly(call):
    """Nothing listening: the message leads with "nothing answers at <origin> (connection
    refused): is the server running?", short. Failed before: "connection refused by
    ws://..." buried after "could not be completed after 4 failed attempt(s); last:" (WS),
    urllib3's whole MaxRetryError repr (HTTP)."""
    from riptide_sync.exceptions import RipTideError

    port = _free_port()
    client = RipTideClient(f"http://127.0.0.1:{port}", retry=FAST_RETRY)
    scheme = "ws" if call == "websocket" else "http"
    expected = f"nothing answers at {scheme}://127.0.0.1:{port} (connection refused): is the server running?"
    with pytest.raises(RipTideError) as info:
        if call == "batch":
            client.crawl(["https://a.example/"])
        else:
            list(getattr(client.streaming, f"crawl_{call}")(["https://a.example/"]))
    text = str(info.value)
    assert text.startswith(expected), text
    assert len(text) < 200, text
    client.close()


def test_foreign_html_404_body_is_capped_to_a_short_excerpt():
    """A non-RipTide server's HTML 404 page: the message shows its title, not the page.
    Failed before: 500 characters of HTML pasted into the message."""
    from riptide_sync.exceptions import NotFoundError

    page = ("<!DOCTYPE html><html><head><title>404 Not Found</title><style>body{}</style>"
            "</head><body>" + "<p>nothing here, really</p>" * 200 + "</body></html>").encode()

    with answer_every_post(404, "text/html", page) as httpd:
        client = RipTideClient(httpd.base_url, retry=FAST_RETRY)
        for call in (lambda: client.crawl(["https://a.example/"]),
                     lambda: list(client.streaming.crawl_ndjson(["https://a.example/"]))):
            with pytest.raises(NotFoundError) as info:
                call()
            assert "404 Not Found" in str(info.value)
            assert "<" not in str(info.value) and len(str(info.value)) < 200
            assert info.value.body.startswith("<!DOCTYPE html>")  # the body itself is kept
        client.close()


class _SilentHTTP(LoopbackServer):
    """A loopback server that reads a request and then says nothing, or dribbles a status
    line one byte every ``dribble`` seconds."""

    def __init__(self, dribble: float | None = None):
        super().__init__()
        self.dribble = dribble
        self.socks: list[socket.socket] = []
        self.start()

    def accepted(self, sock):
        self.socks.append(sock)
        super().accepted(sock)

    def handle(self, sock):
        sock.settimeout(5)
        try:
            sock.recv(65536)
            if self.dribble is not None:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n" * 20:
                    if self.stopping.wait(self.dribble):
                        return
                    sock.sendall(bytes([byte]))
            self.stopping.wait(30)
        except OSError:
            pass
        finally:
            sock.close()

    def close(self):
        self.stop_accepting(5)


@pytest.mark.parametrize("call", ["ndjson", "sse", "batch"])
def test_close_wakes_a_request_waiting_for_headers_at_once(call):
    """A silent server (timeout 30): close() from another thread ends the call within a
    second, leaving no thread. Failed before: still blocked 5 s later."""
    server = _SilentHTTP()
    client = RipTideClient(f"http://127.0.0.1:{server.port}", timeout=30, retry=None)
    stream = None if call == "batch" else getattr(client.streaming, f"crawl_{call}")(
        ["https://a.example/"])
    box: list = []

    def run():
        try:
            box.append(client.crawl(["https://a.example/"]) if stream is None else list(stream))
        except BaseException as exc:  # noqa: BLE001
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.socks and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the request is out, waiting for headers
    started = time.monotonic()
    (client.close if stream is None else stream.close)()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
    if stream is None:
        from riptide_sync.exceptions import StreamConnectionError

        assert isinstance(box[0], StreamConnectionError)
    client.close()
    server.close()
    from riptide_sync import _alarm

    assert _alarm._alarm.live == 0  # no header deadline left pending on the alarm thread


def test_dribbled_headers_cannot_outlive_timeout():
    """Headers dribbled one byte every 0.2 s: timeout=1.5 bounds the whole wait for them
    (not each recv). Failed before: the wait went on as long as the bytes kept coming."""
    from riptide_sync.exceptions import StreamTimeoutError

    server = _SilentHTTP(dribble=0.2)
    client = RipTideClient(f"http://127.0.0.1:{server.port}", timeout=1.5, retry=None)
    started = time.monotonic()
    with pytest.raises(IncompleteStreamError) as info:
        list(client.streaming.crawl_ndjson(["https://a.example/"]))
    elapsed = time.monotonic() - started
    assert isinstance(info.value.__cause__, StreamTimeoutError)
    assert "no response headers within 1.5 s" in str(info.value)
    assert elapsed < 3.0
    client.close()
    server.close()


def test_dribbled_websocket_handshake_cannot_outlive_connect_timeout():
    """A 101 response dribbled a byte every 0.2 s: connect_timeout=1.5 bounds the whole
    handshake. Failed before: the handshake lived as long as the bytes kept coming."""
    from riptide_sync.exceptions import StreamTimeoutError

    server = _SilentHTTP(dribble=0.2)
    client = RipTideClient(f"http://127.0.0.1:{server.port}", connect_timeout=1.5, retry=None)
    started = time.monotonic()
    with pytest.raises(IncompleteStreamError) as info:
        list(client.streaming.crawl_websocket(["https://a.example/"]))
    elapsed = time.monotonic() - started
    assert isinstance(info.value.__cause__, StreamTimeoutError), repr(info.value.__cause__)
    assert "within connect_timeout=1.5 s" in str(info.value)
    assert elapsed < 3.0
    client.close()
    server.close()


SECRET = "sk-live-0123456789abcdef"


def test_api_key_never_in_debug_logs_or_exceptions(make_server, caplog):
    """Every transport and batch at DEBUG (our loggers, urllib3, websocket-client), then a
    wrong key: the key appears in no log record and no exception text."""
    import logging

    from riptide_sync.exceptions import RipTideError

    srv = make_server(api_keys=(SECRET,), synthetic_doc_size=20)
    caplog.set_level(logging.DEBUG)
    client = RipTideClient(srv.base_url, api_key=SECRET, retry=FAST_RETRY)
    urls = ["https://example.org/a", "https://example.org/b"]
    for crawl in (client.streaming.crawl_websocket, client.streaming.crawl_ndjson,
                  client.streaming.crawl_sse):
        assert sum(e.event_type == "result" for e in crawl(urls)) == 2
    assert client.crawl(urls).successful == 2
    assert client.streaming.ping_websocket()["success"]
    texts = [repr(client), repr(client.config), str(client.config)]
    wrong = RipTideClient(srv.base_url, api_key=SECRET[::-1], retry=None)
    for call in (lambda: list(wrong.streaming.crawl_websocket(urls)),
                 lambda: list(wrong.streaming.crawl_ndjson(urls)),
                 lambda: wrong.crawl(urls)):
        with pytest.raises(RipTideError) as info:
            call()
        exc: BaseException | None = info.value
        while exc is not None:
            texts += [str(exc), repr(exc), repr(getattr(exc, "body", None))]
            exc = exc.__cause__ or exc.__context__
    records = [r.getMessage() for r in caplog.records]
    assert len(records) > 10  # DEBUG logging really ran
    for text in records + texts:
        assert SECRET not in text and SECRET[::-1] not in text, text
    client.close()
    wrong.close()


def test_a_server_echoing_the_key_it_refused_is_redacted(make_peer):
    """A 401 whose body quotes the API key: neither the message, str(), repr() nor .body
    of the AuthenticationError shows it, on HTTP and on the WebSocket handshake. Failed
    before: the key came back verbatim."""
    import json as _json

    from riptide_sync.exceptions import AuthenticationError

    body = _json.dumps({"error": "Unauthorized", "message": f"invalid API key {SECRET}"})

    peer = make_peer(reject=(401, body, {"Content-Type": "application/json"}))
    with answer_every_post(401, "application/json", body.encode()) as httpd:
        http_client = RipTideClient(httpd.base_url, api_key=SECRET, retry=None)
        ws_client = RipTideClient(f"http://127.0.0.1:{peer.port}", api_key=SECRET, retry=None)
        for call in (lambda: http_client.crawl(["https://a.example/"]),
                     lambda: list(http_client.streaming.crawl_ndjson(["https://a.example/"])),
                     lambda: list(ws_client.streaming.crawl_websocket(["https://a.example/"]))):
            with pytest.raises(AuthenticationError) as info:
                call()
            exc = info.value
            for text in (str(exc), repr(exc), exc.message, repr(exc.body)):
                assert SECRET not in text, text
            assert "***" in exc.message
        http_client.close()
        ws_client.close()
