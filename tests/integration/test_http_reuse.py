"""NDJSON and SSE reuse the pooled connection: a body read to its end (the summary is its last
line) returns the connection to urllib3's pool, so sequential crawls and the chunks of a long
list share one TCP connection instead of one connect each.

The connections are counted by an independent peer: a loopback TCP forwarder in front of the
local server that counts the connections it accepts.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator

import pytest

from riptide_sync import RipTideClient

pytest.importorskip("aiohttp")


class CountingForwarder:
    """Accepts TCP connections on 127.0.0.1, counts them, and relays each to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.accepted = 0
        self.sent = bytearray()
        """Every byte the clients sent, in arrival order (one client at a time here)."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept_loop, name="test-forwarder")
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            relay = threading.Thread(target=self._relay, args=(client, upstream, client),
                                     daemon=True)
            self._threads.append(relay)
            relay.start()

    def _relay(self, a: socket.socket, b: socket.socket, client: socket.socket) -> None:
        peer = {a: b, b: a}
        with selectors.DefaultSelector() as sel, a, b:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    if sock is client:
                        self.sent += data
                    peer[sock].sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for relay in self._threads:
            relay.join(2)
        self._listener.close()


@pytest.fixture
def forwarder(make_server) -> Iterator[CountingForwarder]:
    running = make_server(synthetic_doc_size=200)
    host, port = running.base_url.split("//", 1)[1].rsplit(":", 1)
    fwd = CountingForwarder((host, int(port)))
    try:
        yield fwd
    finally:
        fwd.close()


@pytest.mark.parametrize("transport", ["ndjson", "sse"])
def test_sequential_crawls_share_one_connection(forwarder: CountingForwarder, transport: str) -> None:
    """20 sequential crawls on one client: one TCP connect, not 20 (before: 20)."""
    with RipTideClient(f"http://127.0.0.1:{forwarder.port}") as client:
        crawl = getattr(client.streaming, f"crawl_{transport}")
        for i in range(20):
            events = list(crawl([f"https://example.org/{i}/{k}" for k in range(3)]))
            assert [e.event_type for e in events].count("result") == 3
            assert events[-1].event_type == "summary"
    assert forwarder.accepted == 1


@pytest.mark.parametrize("parallel", [1, 2])
def test_chunks_of_a_long_list_reuse_the_pooled_connections(
    forwarder: CountingForwarder, parallel: int, lanes_at_once: None
) -> None:
    """1,000 URLs in 10 chunks of 100: one connection per lane, not one per chunk
    (before: 10)."""
    urls = [f"https://example.org/page/{i}" for i in range(1000)]
    with RipTideClient(f"http://127.0.0.1:{forwarder.port}", parallel=parallel) as client:
        indices = sorted(e.data["index"] for e in client.streaming.crawl_ndjson(urls)
                         if e.event_type == "result")
    assert indices == list(range(1000))
    assert forwarder.accepted <= parallel


def _posts(sent: bytes) -> list[bytes]:
    """The header blocks of the POST requests in ``sent`` (bodies left out)."""
    return [block.split(b"\r\n\r\n", 1)[0] for block in sent.split(b"POST ")[1:]]


def test_the_chunks_of_a_long_list_are_prepared_once(forwarder: CountingForwarder) -> None:
    """requests' full preparation of a request (headers, auth, netrc, cookies merged) runs
    once per stream, not once per chunk (before: once per chunk, 10 here), and every chunk
    still goes out with the same headers and its own body."""
    urls = [f"https://example.org/page/{i}" for i in range(1000)]
    with RipTideClient(f"http://127.0.0.1:{forwarder.port}", parallel=1,
                       api_key="k-123") as client:
        prepared = []
        prepare = client.http.prepare_request
        client.http.prepare_request = lambda request: prepared.append(request) or prepare(request)
        indices = sorted(e.data["index"] for e in client.streaming.crawl_ndjson(urls)
                         if e.event_type == "result")
    assert indices == list(range(1000))
    assert len(prepared) == 1
    posts = _posts(bytes(forwarder.sent))
    assert len(posts) == 10
    for head in posts:
        assert b"X-API-Key: k-123" in head and b"Accept-Encoding: identity" in head
        assert b"Accept: application/x-ndjson" in head


def test_a_cookie_set_during_a_stream_goes_out_with_the_next_chunks(
    forwarder: CountingForwarder,
) -> None:
    """A cookie in the session (say a load balancer's sticky cookie) is sent with every
    request made after it was set: the once-prepared request is not used then."""
    urls = [f"https://example.org/page/{i}" for i in range(300)]
    with RipTideClient(f"http://127.0.0.1:{forwarder.port}", parallel=1) as client:
        results = 0
        for event in client.streaming.crawl_ndjson(urls):
            if event.event_type == "result":
                results += 1
                if results == 1:
                    client.http.cookies.set("sticky", "lb-7")
    assert results == 300
    posts = _posts(bytes(forwarder.sent))
    assert len(posts) == 3
    assert [b"Cookie: sticky=lb-7" in head for head in posts] == [False, True, True]


@pytest.mark.parametrize("transport", ["ndjson", "sse"])
def test_a_server_that_answers_at_once_gets_one_connection(
    forwarder: CountingForwarder, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default parallel=2, every request done within LANE_DELAY (5 s here, so that
    a loaded machine cannot make this server look slow): the chunks go one after
    another on one connection, read on the consumer's thread (no read-ahead thread),
    which streams them 1.2-1.4x faster (before: two connections, two reader threads)."""
    from riptide_sync import _driver

    monkeypatch.setattr(_driver, "LANE_DELAY", 5.0)
    seen: set[str] = set()
    with RipTideClient(f"http://127.0.0.1:{forwarder.port}") as client:
        indices = []
        for event in getattr(client.streaming, f"crawl_{transport}")(
                [f"https://example.org/page/{i}" for i in range(1000)]):
            if event.event_type == "result":
                indices.append(event.data["index"])
                seen.update(t.name for t in threading.enumerate())
    assert sorted(indices) == list(range(1000))
    assert forwarder.accepted == 1
    assert "riptide-http-reader" not in seen


@pytest.mark.parametrize("transport", ["ndjson", "sse"])
def test_a_slow_server_gets_the_second_lane(make_server, transport: str) -> None:
    """Every message 5 ms late (a server that takes its time): the first request streams
    alone past LANE_DELAY, so the second lane opens and two requests are in flight
    (a first result after 10 ms, well under LANE_DELAY, does not keep it closed)."""
    from riptide_sync.server import Faults

    running = make_server(synthetic_doc_size=200, faults=Faults(send_delay=0.005))
    host, port = running.base_url.split("//", 1)[1].rsplit(":", 1)
    fwd = CountingForwarder((host, int(port)))
    try:
        with RipTideClient(f"http://127.0.0.1:{fwd.port}", max_urls_per_request=20) as client:
            indices = [e.data["index"] for e in getattr(client.streaming, f"crawl_{transport}")(
                [f"https://example.org/page/{i}" for i in range(60)]) if e.event_type == "result"]
    finally:
        fwd.close()
    assert sorted(indices) == list(range(60))
    assert fwd.accepted == 2
