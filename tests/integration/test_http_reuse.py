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
            relay = threading.Thread(target=self._relay, args=(client, upstream), daemon=True)
            self._threads.append(relay)
            relay.start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
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
    forwarder: CountingForwarder, parallel: int
) -> None:
    """1,000 URLs in 10 chunks of 100: one connection per lane, not one per chunk
    (before: 10)."""
    urls = [f"https://example.org/page/{i}" for i in range(1000)]
    with RipTideClient(f"http://127.0.0.1:{forwarder.port}", parallel=parallel) as client:
        indices = sorted(e.data["index"] for e in client.streaming.crawl_ndjson(urls)
                         if e.event_type == "result")
    assert indices == list(range(1000))
    assert forwarder.accepted <= parallel
