"""Exception mapping and connection options of the WebSocket transport (pure functions)."""

from __future__ import annotations

import datetime
import email.utils
import socket
import ssl

import pytest
import websocket

from riptide_sync._ws.handshake import proxy_options, sslopt_for
from riptide_sync._ws.errors import map_exception, status_error, translate
from riptide_sync._ws.frames import MessageTooBig
from riptide_sync.exceptions import (
    TLSVerificationError,
    APIError,
    ProtocolViolationError,
    RateLimitError,
    StreamConnectionError,
    StreamingError,
    StreamTimeoutError,
)

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
    """A rejected handshake reads Retry-After as HTTP does: seconds, HTTP date, or ms (preferred)."""
    error = status_error(429, headers, None, "ws://h/crawl/ws", now=NOW_DT)
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
        (RuntimeError("bug"), StreamingError, "RuntimeError"),
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


def test_errors_status_error_reads_json_and_text_bodies() -> None:
    """The body's message and type are read from JSON (string or object) or plain text."""
    error = status_error(429, {"retry-after": "4", "x-request-id": "r1"},
                         b'{"error":{"type":"rate_limited","message":"slow down"}}', "ws://h/")
    assert isinstance(error, RateLimitError)
    assert (error.message, error.error_type, error.retry_after, error.request_id) == (
        "slow down", "rate_limited", 4.0, "r1")
    assert status_error(418, {}, b"teapot", "ws://h/").message == "teapot"
    empty = status_error(400, {}, None, "ws://h/")
    assert type(empty) is APIError and "refused the WebSocket handshake" in empty.message


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
