"""make_session and the per-call defaults of the HTTP layer."""

from __future__ import annotations

from riptide_sync._config import ClientConfig
from riptide_sync._http import make_session, request_timeout, url_for


def test_make_session_sets_headers_verify_and_no_proxy_by_default():
    """The session carries User-Agent, no key header without a key, and verifies TLS."""
    config = ClientConfig(base_url="http://127.0.0.1:8080")
    with make_session(config) as session:
        assert session.headers["User-Agent"].startswith("riptide-sync/")
        assert "X-API-Key" not in session.headers
        assert session.verify is True
        assert session.proxies == {}


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
        assert session.proxies == {
            "http": "http://proxy.local:3128",
            "https": "http://proxy.local:3128",
        }


def test_request_timeout_is_connect_and_read():
    """Every call gets (connect_timeout, timeout), never an unset timeout."""
    config = ClientConfig(base_url="http://h", timeout=12.5, connect_timeout=3.0)
    assert request_timeout(config) == (3.0, 12.5)


def test_url_for_joins_without_double_slash():
    """Routes join the base URL with exactly one slash."""
    assert url_for(ClientConfig(base_url="http://h:1/"), "/crawl") == "http://h:1/crawl"
    assert url_for(ClientConfig(base_url="http://h:1/api"), "/healthz") == "http://h:1/api/healthz"
