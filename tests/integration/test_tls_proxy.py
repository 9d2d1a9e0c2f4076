"""TLS and proxies as users run them (issue 11 §3), against independent peers on loopback.

Certificates come from a CA made by ``trustme``; the proxy is a real ``pproxy`` process
(HTTP CONNECT/forwarding and SOCKS5 on one port). The local server serves HTTPS/WSS with
``ServerConfig(ssl_context=...)``. Every WebSocket, NDJSON, SSE, batch and health call is
checked, because they take different paths (websocket-client vs requests).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

trustme = pytest.importorskip("trustme")
pytest.importorskip("aiohttp")  # the local server (server extra)

from riptide_sync import ConfigError, RetryPolicy, RipTideClient, TLSVerificationError  # noqa: E402
from riptide_sync.server.demo_site import article_urls  # noqa: E402

URLS = article_urls()[:2]


def _crawl_all(client: RipTideClient) -> dict[str, Any]:
    """Run every kind of call; return what each produced (or the exception it raised)."""
    outcome: dict[str, Any] = {}
    calls: dict[str, Callable[[], Any]] = {
        "ws": lambda: [e.event_type for e in client.streaming.crawl_websocket(URLS)][-1],
        "ndjson": lambda: [e.event_type for e in client.streaming.crawl_ndjson(URLS)][-1],
        "sse": lambda: [e.event_type for e in client.streaming.crawl_sse(URLS)][-1],
        "batch": lambda: client.crawl(URLS).successful,
        "health": lambda: client.health().status,
    }
    for name, call in calls.items():
        try:
            outcome[name] = call()
        except Exception as exc:  # noqa: BLE001 - the test compares outcomes
            outcome[name] = exc
    return outcome


@pytest.fixture(autouse=True)
def no_ca_bundle_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from no CA bundle in the environment; tests set one explicitly."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "WEBSOCKET_CLIENT_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


ALL_OK = {"ws": "summary", "ndjson": "summary", "sse": "summary", "batch": 2, "health": "healthy"}


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def tls_server(make_server: Callable[..., Any], ca: Any) -> Any:
    """A local server on HTTPS/WSS with a certificate for 127.0.0.1, localhost and ::1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
    return make_server(ssl_context=context)


@pytest.fixture
def ca_file(tmp_path: Path, ca: Any) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def wrong_ca_file(tmp_path: Path) -> str:
    """A CA bundle that does not trust the server (as a corporate bundle would not)."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


# --- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_verify_path_wins_over_the_environment_bundle(tls_server, ca_file, wrong_ca_file, monkeypatch, variable):
    """verify=<CA path> is used on every call, WS and HTTP, whatever the environment names."""
    monkeypatch.setenv(variable, wrong_ca_file)
    with RipTideClient(tls_server.base_url, verify=ca_file, retry=1) as client:
        assert _crawl_all(client) == ALL_OK


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_wins_over_the_environment_bundle(tls_server, wrong_ca_file, monkeypatch):
    """verify=False turns verification off on every call, even with REQUESTS_CA_BUNDLE set."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", wrong_ca_file)
    with RipTideClient(tls_server.base_url, verify=False, retry=1) as client:
        assert _crawl_all(client) == ALL_OK


def test_default_verify_follows_the_environment_bundle_on_ws_and_http(tls_server, ca_file, monkeypatch):
    """verify left at its default: the bundle REQUESTS_CA_BUNDLE names verifies WS and HTTP alike."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)
    with RipTideClient(tls_server.base_url, retry=1) as client:
        assert _crawl_all(client) == ALL_OK


def test_certificate_failure_is_final_not_retried(tls_server):
    """An untrusted certificate raises TLSVerificationError at once, on WS and HTTP: no retry."""
    with RipTideClient(tls_server.base_url, retry=RetryPolicy(max_attempts=5, initial_backoff=1.0)) as client:
        started = time.monotonic()
        outcome = _crawl_all(client)
        elapsed = time.monotonic() - started
    assert all(isinstance(value, TLSVerificationError) for value in outcome.values()), outcome
    assert "certificate" in str(outcome["ws"]).lower() and "certificate" in str(outcome["ndjson"]).lower()
    assert elapsed < 3.0  # five calls, one attempt each: no backoff sleeps
    assert tls_server.request_log == []


def test_missing_ca_bundle_path_is_a_config_error(tmp_path):
    """A verify path that does not exist is refused before any connection, naming it."""
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="nope.pem"):
        RipTideClient("https://127.0.0.1:1", verify=missing)


# --- proxies ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    """A pproxy process on loopback; ``connections_to(port)`` counts what it forwarded."""

    def __init__(self, log: Path, port: int) -> None:
        self.log = log
        self.port = port

    def connections_to(self, port: int) -> int:
        return sum(f"-> 127.0.0.1:{port}" in line for line in self.log.read_text().splitlines())

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    pytest.importorskip("pproxy")
    port = _free_port()
    log = tmp_path / "pproxy.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pproxy", "-l", f"http+socks5://127.0.0.1:{port}", "-v"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while "Serving on" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Proxy(log, port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


def _ws_and_ndjson(client: RipTideClient) -> tuple[str, str]:
    ws = [e.event_type for e in client.streaming.crawl_websocket(URLS)][-1]
    ndjson = [e.event_type for e in client.streaming.crawl_ndjson(URLS)][-1]
    return ws, ndjson


def _wait_for_log(proxy: Proxy, port: int, count: int) -> int:
    deadline = time.monotonic() + 2
    while proxy.connections_to(port) < count and time.monotonic() < deadline:
        time.sleep(0.02)  # pproxy writes its log line as the tunnel opens
    return proxy.connections_to(port)


def test_explicit_proxy_carries_ws_and_http(server, proxy):
    """proxy= sends the WebSocket handshake and the NDJSON POST through the proxy."""
    with RipTideClient(server.base_url, proxy=proxy.url(), retry=1) as client:
        assert _ws_and_ndjson(client) == ("summary", "summary")
        assert client.health().status == "healthy"
    # The WebSocket, and one HTTP connection: the NDJSON body is read to its end, so its
    # pooled connection (a tunnel through the proxy) carries the health call too.
    assert _wait_for_log(proxy, server.port, 2) >= 2


def test_no_proxy_wins_over_explicit_proxy_for_ws_and_http_alike(server, proxy, monkeypatch):
    """One rule: a host NO_PROXY matches is reached directly, by WS and HTTP, even with proxy=."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with RipTideClient(server.base_url, proxy=proxy.url(), retry=1) as client:
        assert _ws_and_ndjson(client) == ("summary", "summary")
        assert client.health().status == "healthy"
    time.sleep(0.2)
    assert proxy.connections_to(server.port) == 0


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_environment_proxy_carries_ws_and_http_alike(server, proxy, monkeypatch, variable):
    """Without proxy=, the *_PROXY variables apply to WS and HTTP the same way."""
    monkeypatch.setenv(variable, proxy.url())
    with RipTideClient(server.base_url, retry=1) as client:
        assert _ws_and_ndjson(client) == ("summary", "summary")
    assert _wait_for_log(proxy, server.port, 2) >= 2
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    before = proxy.connections_to(server.port)
    with RipTideClient(server.base_url, retry=1) as client:
        assert _ws_and_ndjson(client) == ("summary", "summary")
    time.sleep(0.2)
    assert proxy.connections_to(server.port) == before


def test_socks5_proxy_carries_ws_and_http(server, proxy):
    """A socks5:// proxy works for both, with the socks extra installed."""
    pytest.importorskip("socks")
    pytest.importorskip("python_socks")
    with RipTideClient(server.base_url, proxy=proxy.url("socks5"), retry=1) as client:
        assert _ws_and_ndjson(client) == ("summary", "summary")
    assert _wait_for_log(proxy, server.port, 2) >= 2
    assert "socks5" in proxy.log.read_text()


@pytest.mark.parametrize("missing", ["socks", "python_socks"])
def test_socks_proxy_without_its_libraries_says_what_to_install(monkeypatch, missing):
    """A SOCKS proxy without PySocks / python-socks is refused up front, naming the extra
    (not a 'protocol error' from deep inside the handshake)."""
    monkeypatch.setitem(sys.modules, missing, None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"riptide-sync\[socks\]") as info:
        RipTideClient("http://127.0.0.1:1", proxy="socks5://user:secret@127.0.0.1:1080")
    assert "secret" not in str(info.value)


# --- IPv6 ---------------------------------------------------------------------------------


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return True
    return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6_literal_base_url_plain_and_tls(make_server, ca, ca_file):
    """http://[::1]:PORT and https://[::1]:PORT work for every call (WS, NDJSON, SSE, batch, health)."""
    plain = make_server(host="::1")
    assert plain.base_url.startswith("http://[::1]:")
    with RipTideClient(plain.base_url, retry=1) as client:
        assert _crawl_all(client) == ALL_OK
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("::1").configure_cert(context)
    tls = make_server(host="::1", ssl_context=context)
    with RipTideClient(tls.base_url, verify=ca_file, retry=1) as client:
        assert _crawl_all(client) == ALL_OK
