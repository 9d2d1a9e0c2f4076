"""make_session, the per-call defaults of the HTTP layer, and the TLS and proxy rules
HTTP and WebSocket share (resolve_verify, proxy_for)."""

from __future__ import annotations

import pytest

from riptide_sync._config import ClientConfig
from riptide_sync._http import make_session, request_timeout, url_for
from riptide_sync._http.session import proxy_for, resolve_verify
from riptide_sync._ws.handshake import ws_proxy_options


@pytest.fixture(autouse=True)
def no_ca_bundle_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_make_session_sets_headers_verify_and_no_proxy_by_default():
    """The session carries User-Agent, no key header without a key, and verifies TLS."""
    config = ClientConfig(base_url="http://127.0.0.1:8080")
    with make_session(config) as session:
        assert session.headers["User-Agent"].startswith("riptide-sync/")
        assert "X-API-Key" not in session.headers
        assert session.verify is True
        assert proxy_for(config, config.base_url) is None


def test_make_session_api_key_ca_bundle_and_proxy():
    """An API key becomes X-API-Key; verify and proxy come from the config."""
    config = ClientConfig(
        base_url="https://api.example",
        api_key="demo-key-123",
        verify="/etc/ssl/ca.pem",
        proxy="http://proxy.local:3128",
    )
    with make_session(config) as session:
        assert session.headers["X-API-Key"] == "demo-key-123"
        assert session.verify == "/etc/ssl/ca.pem"
        settings = session.merge_environment_settings(config.base_url + "/crawl", {}, None, None, None)
        assert settings["proxies"] == {"http": "http://proxy.local:3128", "https": "http://proxy.local:3128"}
        assert settings["verify"] == "/etc/ssl/ca.pem"


def test_resolve_verify_explicit_wins_default_follows_environment():
    """False or a path always win; True takes REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE."""
    env = {"REQUESTS_CA_BUNDLE": "/env/requests.pem", "CURL_CA_BUNDLE": "/env/curl.pem"}
    assert resolve_verify(False, env) is False
    assert resolve_verify("/mine.pem", env) == "/mine.pem"
    assert resolve_verify(True, env) == "/env/requests.pem"
    assert resolve_verify(True, {"CURL_CA_BUNDLE": "/env/curl.pem"}) == "/env/curl.pem"
    assert resolve_verify(True, {}) is True


def test_session_verify_is_not_overridden_by_the_environment(monkeypatch):
    """requests alone lets REQUESTS_CA_BUNDLE replace session.verify on every call."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/requests.pem")
    config = ClientConfig(base_url="https://api.example", verify=False)
    with make_session(config) as session:
        assert session.merge_environment_settings("https://api.example/crawl", {}, None, None, None)["verify"] is False


def test_proxy_rule_is_one_for_http_and_ws(monkeypatch):
    """proxy=, else the environment; never for a NO_PROXY host; ws URLs count as http."""
    explicit = ClientConfig(base_url="http://10.1.2.3:8080", proxy="http://proxy:3128")
    assert proxy_for(explicit, "http://10.1.2.3:8080/crawl") == "http://proxy:3128"
    assert ws_proxy_options(explicit, "ws://10.1.2.3:8080/crawl/ws")["http_proxy_host"] == "proxy"
    monkeypatch.setenv("NO_PROXY", "10.1.2.3,.internal")
    assert proxy_for(explicit, "http://10.1.2.3:8080/crawl") is None
    assert ws_proxy_options(explicit, "ws://10.1.2.3:8080/crawl/ws") == {"http_no_proxy": ["*"]}
    assert proxy_for(explicit, "wss://api.internal/crawl/ws") is None
    monkeypatch.delenv("NO_PROXY")
    env_only = ClientConfig(base_url="https://api.example")
    monkeypatch.setenv("HTTPS_PROXY", "http://envproxy:8080")
    assert proxy_for(env_only, "wss://api.example/crawl/ws") == "http://envproxy:8080"
    assert proxy_for(env_only, "ws://api.example/crawl/ws") is None  # only https_proxy is set


def test_request_timeout_is_connect_and_read():
    """Every call gets (connect_timeout, timeout), never an unset timeout."""
    config = ClientConfig(base_url="http://h", timeout=12.5, connect_timeout=3.0)
    assert request_timeout(config) == (3.0, 12.5)


def test_url_for_joins_without_double_slash():
    """Routes join the base URL with exactly one slash."""
    assert url_for(ClientConfig(base_url="http://h:1/"), "/crawl") == "http://h:1/crawl"
    assert url_for(ClientConfig(base_url="http://h:1/api"), "/healthz") == "http://h:1/api/healthz"
