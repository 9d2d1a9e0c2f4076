"""A parallel NDJSON/SSE stream sends a chunk's request without the consumer waiting for its
response headers while another request streams (riptide_sync._http.opening): the POST
goes out on that lane's reader thread, and its failure is that request's failure.

The server is the local one behind a stdlib ``http.server`` relay that can hold back the
response headers of the n-th request, or answer it with an error status instead.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Callable

import pytest

from riptide_sync import RetryPolicy, RipTideClient
from riptide_sync.exceptions import AuthenticationError
from support.leaks import still_there, threads_since
from support.loopback import HTTPServerThread, QuietHandler

pytest.importorskip("aiohttp")
pytestmark = pytest.mark.usefixtures("lanes_at_once")  # two lanes on the fast local server

Script = Callable[[int], "tuple[int, float]"]
"""Request number (0, 1, ...) -> (status to answer with, 200 relays; seconds to hold the
response headers back)."""


def relay_to(upstream: str, script: Script, split: bool = False) -> HTTPServerThread:
    """The relay; ``split``: every piece of the body goes out in two halves, 2 ms apart
    (a line cut across the client's reads)."""
    host, port = upstream.split("//", 1)[1].rsplit(":", 1)
    lock = threading.Lock()
    count = [0]

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                number = count[0]
                count[0] += 1
            status, hold = script(number)
            time.sleep(hold)
            if status != 200:
                self.reply(status, "application/json",
                           json.dumps({"error": {"type": "test", "message": "no"}}).encode())
                return
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                upstream_response = conn.getresponse()
                self.send_response(200)
                self.send_header("Content-Type", upstream_response.getheader("Content-Type"))
                self.send_header("Connection", "close")
                self.end_headers()
                while True:
                    chunk = upstream_response.read1(65536)
                    if not chunk:
                        break
                    if split and len(chunk) > 1:
                        self.wfile.write(chunk[:len(chunk) // 2])
                        self.wfile.flush()
                        time.sleep(0.002)
                        chunk = chunk[len(chunk) // 2:]
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client closed the stream: nothing more to relay
            finally:
                conn.close()

    return HTTPServerThread(Handler)


def riptide_threads_since(before: set[threading.Thread]) -> list[str]:
    """The SDK's threads started since ``before`` and still alive (the relay's are not)."""
    return [t.name for t in threads_since(before) if t.name.startswith("riptide")]


@pytest.fixture
def paced_server(make_server) -> Iterator[str]:
    from riptide_sync.server import Faults

    yield make_server(synthetic_doc_size=50, faults=Faults(send_delay=0.01)).base_url


@pytest.mark.parametrize("transport", ["ndjson", "sse"])
def test_the_consumer_reads_on_while_the_next_request_waits_for_its_headers(
    paced_server: str, transport: str
) -> None:
    """The second request's headers are held back 0.5 s while the first streams a result
    every 10 ms: those results reach the consumer as they come (before: none for 0.5 s,
    the consumer waited in the second POST)."""
    with relay_to(paced_server, lambda n: (200, 0.5 if n == 1 else 0.0)) as relay, \
            RipTideClient(relay.base_url, parallel=2, max_urls_per_request=20) as client:
        arrivals: dict[int, float] = {}
        for event in getattr(client.streaming, f"crawl_{transport}")(
                [f"https://example.org/{i}" for i in range(40)]):
            if event.event_type == "result":
                arrivals[event.data["index"]] = time.monotonic()
    assert sorted(arrivals) == list(range(40))
    first_request = [arrivals[i] for i in range(20)]
    gaps = [b - a for a, b in zip(first_request, first_request[1:])]
    assert max(gaps) < 0.3, gaps


def test_a_refused_request_on_the_second_lane_is_retried_like_any(paced_server: str) -> None:
    """503 for the second request: it is sent again, and every URL comes once."""
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.0, jitter=0.0)
    with relay_to(paced_server, lambda n: (503 if n == 1 else 200, 0.0)) as relay, \
            RipTideClient(relay.base_url, parallel=2, max_urls_per_request=20,
                          retry=policy) as client:
        indices = [e.data["index"] for e in client.streaming.crawl_ndjson(
            [f"https://example.org/{i}" for i in range(60)]) if e.event_type == "result"]
    assert sorted(indices) == list(range(60))


def test_a_401_on_the_second_lane_is_raised_as_itself_and_leaves_no_thread(
    paced_server: str,
) -> None:
    before = set(threading.enumerate())
    with relay_to(paced_server, lambda n: (401 if n == 1 else 200, 0.0)) as relay, \
            RipTideClient(relay.base_url, parallel=2, max_urls_per_request=20) as client:
        with pytest.raises(AuthenticationError):
            for _ in client.streaming.crawl_ndjson([f"https://example.org/{i}" for i in range(60)]):
                pass
    assert still_there(lambda: riptide_threads_since(before), 1.0) == []


def test_close_during_a_held_back_open_ends_at_once(paced_server: str) -> None:
    """close() while the second request waits for headers (held 5 s): the stream ends
    within a second and no reader thread is left."""
    before = set(threading.enumerate())
    with relay_to(paced_server, lambda n: (200, 5.0 if n == 1 else 0.0)) as relay, \
            RipTideClient(relay.base_url, parallel=2, max_urls_per_request=20) as client:
        stream = client.streaming.crawl_ndjson([f"https://example.org/{i}" for i in range(60)])
        for event in stream:
            if event.event_type == "result" and event.data["index"] == 19:
                break  # the first request is done; the second is being held back
        started = time.monotonic()
        stream.close()
        took = time.monotonic() - started
    assert took < 1.0
    assert still_there(lambda: riptide_threads_since(before), 1.0) == []


@pytest.mark.parametrize("transport", ["ndjson", "sse"])
def test_a_line_cut_across_reads_is_not_a_timeout(make_server, transport: str) -> None:
    """Lines arrive in two halves: a parallel lane whose reader has read half a line has
    no event ready yet. Before, ready() said it had, the consumer's receive(0.0) timed out
    ("no event within 0 s") and the request was re-sent (NDJSON: 16 times, 732 URLs
    re-requested; also before this round's changes, with fewer re-sends)."""
    upstream = make_server(synthetic_doc_size=4096).base_url
    with relay_to(upstream, lambda n: (200, 0.0), split=True) as relay, \
            RipTideClient(relay.base_url, parallel=2, max_urls_per_request=50) as client:
        stream = getattr(client.streaming, f"crawl_{transport}")(
            [f"https://example.org/{i}" for i in range(300)])
        indices = [e.data["index"] for e in stream if e.event_type == "result"]
    assert sorted(indices) == list(range(300))
    assert (stream.stats.reconnects, stream.stats.resumed_urls) == (0, 0)
