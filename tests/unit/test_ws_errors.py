"""Exception mapping and connection options of the WebSocket transport (pure functions)."""

from __future__ import annotations

import datetime
import email.utils
import socket
import ssl

import pytest
import websocket

from riptide_sync._http.errors import api_error
from riptide_sync._ws.handshake import proxy_options, sslopt_for
from riptide_sync._ws.errors import for_consumer, map_exception, translate
from riptide_sync._ws.frames import FrameParser, MessageTooBig
from riptide_sync.exceptions import (
    TLSVerificationError,
    APIError,
    AuthenticationError,
    ProtocolViolationError,
    RateLimitError,
    StreamConnectionError,
    StreamTimeoutError,
)
from test_ws_bridge import open_transport

from support import UNIT
from support.ws_peer import PeerConnection

__all__ = ["open_transport"]  # a fixture, re-used from the bridge's tests (make_peer: conftest)

NOW = 1_762_516_800.0
NOW_DT = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc)


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, None),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ],
)
def test_errors_retry_after_parsed(headers, expected) -> None:
    """A rejected handshake reads Retry-After as HTTP does: seconds, HTTP date, or ms
    (preferred); the same api_error (at a frozen now) that the handshake's rule calls."""
    error = api_error(429, headers, b"", reason="refused", now=NOW_DT)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


@pytest.mark.parametrize(
    "exc, expected, words",
    [
        (websocket.WebSocketTimeoutException("t"), StreamTimeoutError, "timed out"),
        (socket.timeout("t"), StreamTimeoutError, "timed out"),
        (socket.gaierror(-2, "Name or service not known"), StreamConnectionError, "resolve"),
        (websocket.WebSocketAddressException("x"), StreamConnectionError, "resolve"),
        (ConnectionRefusedError(111, "refused"), StreamConnectionError, "refused"),
        (ssl.SSLCertVerificationError("bad cert"), TLSVerificationError, "TLS certificate"),
        (ssl.SSLError("handshake failure"), StreamConnectionError, "TLS"),
        (websocket.WebSocketProxyException("407"), StreamConnectionError, "proxy"),
        (websocket.WebSocketConnectionClosedException("x"), StreamConnectionError, "closed"),
        (ConnectionResetError(104, "reset"), StreamConnectionError, "failed"),
        (websocket.WebSocketException("Invalid WebSocket Header"), ProtocolViolationError, "handshake"),
        (MessageTooBig(10, 5), ProtocolViolationError, "max_message_size=5"),
    ],
)
def test_errors_foreign_exceptions_mapped(exc, expected, words) -> None:
    """Each foreign exception maps to the most specific riptide_sync exception."""
    mapped = map_exception(exc, url="ws://h/crawl/ws", during="connecting to")
    assert type(mapped) is expected
    assert words in str(mapped)


def test_errors_translate_chains_with_from() -> None:
    """translate() raises the mapped exception with the original as __cause__."""
    original = ConnectionRefusedError(111, "refused")
    with pytest.raises(StreamConnectionError) as info:
        with translate(url="ws://h/", during="connecting to"):
            raise original
    assert info.value.__cause__ is original


def _bad_status(status: int, headers: dict | None, body: bytes | None) -> Exception:
    return websocket.WebSocketBadStatusException("Handshake status %d %s", status, "x",
                                                 headers, body)


def test_errors_refused_handshake_reads_json_and_text_bodies() -> None:
    """The body's message and type are read from JSON (string or object) or plain text."""
    url = "ws://h/"
    error = map_exception(_bad_status(429, {"retry-after": "4", "x-request-id": "r1"},
                                      b'{"error":{"type":"rate_limited","message":"slow down"}}'),
                          url=url, during="connecting to")
    assert isinstance(error, RateLimitError)
    assert (error.message, error.error_type, error.retry_after, error.request_id) == (
        "slow down", "rate_limited", 4.0, "r1")
    teapot = map_exception(_bad_status(418, {}, b"teapot"), url=url, during="connecting to")
    assert teapot is not None and teapot.message == "teapot"
    empty = map_exception(_bad_status(400, None, None), url=url, during="connecting to")
    assert type(empty) is APIError and "refused the WebSocket handshake" in empty.message
    denied = map_exception(_bad_status(401, None, None), url=url, during="connecting to")
    assert type(denied) is AuthenticationError


@pytest.mark.parametrize("exc", [AttributeError("bug"), TypeError("bug"), RuntimeError("bug"),
                                 ValueError("x"), StreamConnectionError("ours")])
def test_errors_bugs_and_ours_are_not_mapped(exc) -> None:
    """Only websocket-client, socket, ssl and OS errors are mapped: a bug, or one of our
    own exceptions, is no foreign failure (issue 15: bugs stay bugs)."""
    assert map_exception(exc, url="ws://h/", during="reading from") is None


def test_errors_translate_lets_a_bug_through_as_itself() -> None:
    """An AttributeError raised inside translate() comes out as AttributeError, not as
    StreamingError (it did before issue 15)."""
    bug = AttributeError("'NoneType' object has no attribute 'send'")
    with pytest.raises(AttributeError) as info:
        with translate(url="ws://h/", during="sending to"):
            raise bug
    assert info.value is bug


def test_errors_for_consumer_maps_foreign_and_keeps_bugs() -> None:
    """What the reader thread hands the consumer: a foreign failure mapped, with it as
    __cause__; a bug itself, without a cause made up for it."""
    reset = ConnectionResetError(104, "reset")
    mapped = for_consumer(reset, url="ws://h/", during="reading from")
    assert type(mapped) is StreamConnectionError and mapped.__cause__ is reset
    bug = AttributeError("bug")
    assert for_consumer(bug, url="ws://h/", during="reading from") is bug
    assert bug.__cause__ is None


def test_errors_bug_in_reader_thread_raised_as_itself(make_peer, open_transport,
                                                      monkeypatch) -> None:
    """A bug on the reader thread (here the frame parser raising AttributeError) reaches
    the consumer as that AttributeError, not as a StreamingError."""
    def script(conn: PeerConnection) -> None:
        conn.wait_text()
        conn.pump(1 * UNIT)

    def broken_feed(self: FrameParser, data: bytes) -> list[bytes]:
        raise AttributeError("a bug in the parser")

    monkeypatch.setattr(FrameParser, "feed", broken_feed)
    transport = open_transport(make_peer(script))
    source = transport.open_crawl(["https://a.example/"], None)
    with pytest.raises(AttributeError, match="a bug in the parser"):
        source.receive(5 * UNIT)


def test_connection_tls_options_follow_verify() -> None:
    """verify=True checks certificates, False does not, a path is the CA bundle."""
    assert sslopt_for(True) == {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
    assert sslopt_for(False) == {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    assert sslopt_for("/etc/ca.pem")["ca_certs"] == "/etc/ca.pem"
    assert sslopt_for("/")["ca_cert_path"] == "/"


def test_connection_proxy_options_from_url() -> None:
    """An http(s)/socks proxy URL becomes websocket-client's proxy options."""
    assert proxy_options(None) == {}
    assert proxy_options("http://user:p%40ss@proxy:3128") == {
        "http_proxy_host": "proxy", "http_proxy_port": 3128, "proxy_type": "http",
        "http_proxy_auth": ("user", "p@ss")}
    assert proxy_options("socks5://proxy")["http_proxy_port"] == 1080
    assert proxy_options("http://proxy")["http_proxy_port"] == 80
