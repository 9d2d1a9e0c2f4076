"""The reader's answers to a misbehaving server (found by the Autobahn testsuite), over
real loopback sockets; frames are built with websockets' encoder (an independent peer)."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from typing import Any

import pytest
import websocket
from websockets.frames import Frame, Opcode

from riptide_sync._transport import StreamStats
from riptide_sync._ws.connection import Connection
from riptide_sync.exceptions import ProtocolViolationError, StreamConnectionError
from riptide_sync.retry import is_retryable
from test_ws_bridge import config, open_transport

from support import UNIT
from support.ws_peer import PeerConnection, result, wire

__all__ = ["open_transport"]  # a fixture, re-used from the bridge's tests (make_peer: conftest)


def raw(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False)


@pytest.fixture
def connections():
    made: list[Connection] = []

    def make(url: str, **kw: Any) -> Connection:
        conn = Connection(config(**kw), StreamStats(), url)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def close_code_seen(peer: Any) -> int | None:
    """The code of the Close frame the peer received (once its handler has finished)."""
    peer.join_handlers()
    frame = peer.conn.proto.close_rcvd
    return None if frame is None else frame.code


def test_reader_three_results_then_bad_frame_delivers_three(make_peer, open_transport) -> None:
    """3 results and a bad frame in one read: the 3 reach the consumer, then the error
    (they were thrown away with the read)."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send_raw(b"".join(raw(Opcode.TEXT, result(i).encode()) for i in range(3))
                      + bytes([0x83, 0x00]))  # reserved opcode 3
        conn.wait_eof()

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    assert source.receive(5 * UNIT).event_type == "welcome"
    assert [source.receive(5 * UNIT).data["index"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ProtocolViolationError, match="opcode 0x3"):
        source.receive(5 * UNIT)
    assert close_code_seen(peer) == 1002


def test_reader_ping_answered_before_the_message_after_it(make_peer, connections,
                                                           monkeypatch) -> None:
    """frag 1, ping, frag 2 in one read: the pong goes out before the message is queued,
    so nothing the consumer sends in reply can overtake it (Autobahn 5.6, 5.19)."""
    log: list[str] = []
    done = threading.Event()
    pong = websocket.WebSocket.pong

    def logged_pong(self: websocket.WebSocket, payload: Any) -> None:
        log.append("pong")
        pong(self, payload)

    monkeypatch.setattr(websocket.WebSocket, "pong", logged_pong)

    def script(conn: PeerConnection) -> None:
        conn.send_raw(raw(Opcode.TEXT, b'{"message_type":', fin=False) + raw(Opcode.PING, b"p")
                      + raw(Opcode.CONT, b'"status","data":{}}'))
        done.wait(5 * UNIT)

    peer = make_peer(script)
    conn = connections(peer.url)
    put_batch = conn.queue.put_batch

    def logged_put(items: Any) -> bool:
        log.append(f"put {len(items)}")
        return put_batch(items)

    monkeypatch.setattr(conn.queue, "put_batch", logged_put)
    conn.connect()
    assert conn.receive(5 * UNIT).event_type == "status"
    done.set()
    assert log == ["put 1", "pong", "put 1"]  # the welcome, then the pong, then the message


def test_reader_invalid_utf8_closes_1007_resumable(make_peer, open_transport) -> None:
    """A text frame that is not UTF-8 (the JSON decoder finds it) closes with 1007 and
    ends the stream with a retryable StreamConnectionError, after the frames before it;
    it is not an error event."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send(result(0))
        conn.send_raw(raw(Opcode.TEXT, b'{"message_type":"result","data":{"x":"\xed\xa0\x80"}}'))
        conn.wait_eof()

    peer = make_peer(script)
    transport = open_transport(peer)
    source = transport.open_crawl(["https://a.example/"], None)
    assert [source.receive(5 * UNIT).event_type for _ in range(2)] == ["welcome", "result"]
    with pytest.raises(StreamConnectionError, match="not valid UTF-8") as info:
        source.receive(5 * UNIT)
    assert is_retryable(info.value)
    assert "1007" in str(info.value)
    assert close_code_seen(peer) == 1007


def test_reader_invalid_utf8_on_reader_closes_1007(make_peer, open_transport) -> None:
    """The same under a drop policy, where the reader thread decodes."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send_raw(raw(Opcode.TEXT, result(0).encode())
                      + raw(Opcode.TEXT, b'{"message_type":"result\xff"}'))
        conn.wait_eof()

    peer = make_peer(script)
    transport = open_transport(peer, overflow="drop_oldest")
    source = transport.open_crawl(["https://a.example/"], None)
    assert [source.receive(5 * UNIT).event_type for _ in range(2)] == ["welcome", "result"]
    with pytest.raises(StreamConnectionError, match="not valid UTF-8") as info:
        source.receive(5 * UNIT)
    assert is_retryable(info.value)
    assert close_code_seen(peer) == 1007


@pytest.mark.parametrize("payload, expected", [
    ((1006).to_bytes(2, "big"), 1002),  # 1006 must never be on the wire: it was echoed
    ((2999).to_bytes(2, "big"), 1002),
    (b"\x03", 1002),  # a 1-byte payload
    (b"\x03\xe8\xff", 1007),  # a reason that is not UTF-8
    (b"", 1000),  # no code: answered with 1000, not 1005
    ((4001).to_bytes(2, "big"), 4001),  # valid: echoed
], ids=["1006", "2999", "1-byte", "bad-reason", "empty", "4001"])
def test_reader_close_frame_answer(make_peer, connections, payload: bytes, expected: int) -> None:
    """The server's Close frame is validated before it is answered (Autobahn 7.x)."""
    def script(conn: PeerConnection) -> None:
        conn.send_raw(raw(Opcode.CLOSE, payload))

    peer = make_peer(script)
    conn = connections(peer.url)
    conn.connect()
    with pytest.raises((StreamConnectionError, ProtocolViolationError)):
        conn.receive(5 * UNIT)
    assert close_code_seen(peer) == expected


def test_reader_one_close_frame_only(make_peer, connections) -> None:
    """A failed connection sends one Close frame, not a second one from close()."""
    def script(conn: PeerConnection) -> None:
        conn.send_raw(bytes([0x83, 0x00]))
        conn.wait_eof()

    peer = make_peer(script)
    conn = connections(peer.url)
    conn.connect()
    with pytest.raises(ProtocolViolationError):
        conn.receive(5 * UNIT)
    conn.close()
    peer.join_handlers()
    assert peer.conn.proto.close_rcvd is not None and peer.conn.proto.close_rcvd.code == 1002


def _extension_server(listener: socket.socket, stop: threading.Event) -> None:
    """Accepts one handshake and answers 101 naming permessage-deflate, never offered."""
    sock, _ = listener.accept()
    with sock:
        sock.settimeout(5 * UNIT)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                return
            request += chunk
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                     b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        stop.wait(5 * UNIT)


def test_handshake_unoffered_extension_fails_with_its_name(connections) -> None:
    """A 101 naming an extension the client never offered fails the handshake and says
    so (it used to fail later as "reserved bits set")."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    server = threading.Thread(target=_extension_server, args=(listener, stop), daemon=True)
    server.start()
    try:
        conn = connections(f"ws://127.0.0.1:{listener.getsockname()[1]}/crawl/ws")
        with pytest.raises(ProtocolViolationError,
                           match="permessage-deflate.*Sec-WebSocket-Extensions.*offered none"):
            conn.connect()
        assert conn._reader is None
    finally:
        stop.set()
        server.join(5)
        listener.close()


def test_reader_welcome_then_summary_unchanged(make_peer, open_transport) -> None:
    """The hot path still delivers a plain stream whole (no control frames, no errors)."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.send_many([result(i) for i in range(20)]
                       + [wire("summary", total_urls=20, successful=20, failed=0)])

    peer = make_peer(script)
    source = open_transport(peer).open_crawl(["https://a.example/"], None)
    events = [source.receive(5 * UNIT) for _ in range(22)]
    assert [e.event_type for e in events] == ["welcome"] + ["result"] * 20 + ["summary"]


def test_reader_reply_to_a_message_goes_out_before_the_close(make_peer, connections) -> None:
    """A message then a bad frame: what the consumer sends on reading the message reaches
    the server before the Close frame (the reader waits for the consumer; it used to close
    at once, and the reply was refused or came after the Close)."""
    order: list[str] = []

    def script(conn: PeerConnection) -> None:
        conn.send_raw(raw(Opcode.TEXT, wire("status").encode()) + bytes([0x83, 0x00]))
        while not conn.eof:
            conn.pump(0.05)
            for text in conn.texts:
                order.append(f"text {text['request_type']}")
            conn.texts.clear()
            if conn.proto.close_rcvd is not None and "close" not in order:
                order.append("close")

    peer = make_peer(script)
    conn = connections(peer.url)
    conn.connect()
    assert conn.receive(5 * UNIT).event_type == "status"
    conn.send_text('{"request_type":"ping","data":{}}')
    with pytest.raises(ProtocolViolationError):
        conn.receive(5 * UNIT)
    peer.join_handlers()
    assert order == ["text ping", "close"]
    assert peer.conn.proto.close_rcvd.code == 1002


def test_invalid_utf8_frame_is_resumed_by_the_driver(make_peer) -> None:
    """On a crawl, the 1007 close is a lost connection: the driver asks a new connection
    for the URL still missing; the user sees both results and no error event."""
    from riptide_sync import RetryPolicy, RipTideClient

    urls = ["https://a.example/0", "https://a.example/1"]
    asked: list[list[str]] = []

    def script(conn: PeerConnection) -> None:
        request = conn.wait_text()
        wanted = request["data"]["urls"]
        asked.append(wanted)
        conn.send(wire("metadata", total_urls=len(wanted)))
        for j, url in enumerate(wanted):
            conn.send(wire("result", index=j, progress={"completed": j + 1, "total": len(wanted),
                                                        "success_rate": 1.0},
                           result={"url": url, "status": 200}))
            if len(asked) == 1:  # the first connection breaks after one result
                conn.send_raw(raw(Opcode.TEXT, b'{"message_type":"result","x":"\xc0\xaf"}'))
                conn.wait_eof()
                return
        conn.send(wire("summary", total_urls=len(wanted), successful=len(wanted), failed=0))
        conn.wait_eof()

    peer = make_peer(script)
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, jitter=0.0)
    with RipTideClient(f"http://127.0.0.1:{peer.port}", retry=policy) as client:
        with client.streaming.crawl_websocket(urls) as stream:
            events = list(stream)
    assert asked == [urls, urls[1:]]
    kinds = [e.event_type for e in events]
    assert "error" not in kinds and kinds[-1] == "summary"
    assert sorted(e.data["result"]["url"] for e in events if e.event_type == "result") == urls
    assert peer.connections[0].proto.close_rcvd.code == 1007


@pytest.mark.parametrize("backend", ["orjson", "json"])
def test_decode_frame_refuses_invalid_utf8_with_either_json_backend(backend, monkeypatch) -> None:
    """decode_frame raises InvalidUTF8 (-> 1007) with orjson and with the standard
    library, whose json.loads(bytes) lets an encoded surrogate through ("surrogatepass")."""
    from riptide_sync.protocol import _json, envelope

    if backend == "json":
        monkeypatch.setattr(envelope, "loads", _json._stdlib_loads)
    else:
        pytest.importorskip("orjson")
        import orjson

        monkeypatch.setattr(envelope, "loads", orjson.loads)
    surrogate = b'{"message_type":"result","data":{"t":"\xed\xa0\x80"}}'
    with pytest.raises(envelope.InvalidUTF8, match="offset 38"):
        envelope.decode_frame(surrogate)
    assert envelope.decode_frame(b'{"message_type":"result","data":{}}').event_type == "result"
    assert envelope.decode_frame(b"not json").data["error_type"] == "malformed_message"
