"""The session remembers its proxy decision per origin, but only while the proxy variables
stay the same: a changed HTTPS_PROXY or NO_PROXY is seen by the next call."""

from __future__ import annotations

from riptide_sync._config import ClientConfig
from riptide_sync._http.session import make_session


def _proxies(session, url):
    return session.merge_environment_settings(url, {}, None, None, None)["proxies"]


def test_proxy_decision_follows_the_environment(monkeypatch) -> None:
    session = make_session(ClientConfig(base_url="https://api.example"))
    try:
        assert _proxies(session, "https://api.example/crawl/stream") == {}
        monkeypatch.setenv("HTTPS_PROXY", "http://envproxy:8080")
        assert _proxies(session, "https://api.example/crawl/stream") == {
            "http": "http://envproxy:8080", "https": "http://envproxy:8080"}
        monkeypatch.setenv("NO_PROXY", "api.example")
        assert _proxies(session, "https://api.example/crawl/stream") == {}
        assert _proxies(session, "https://other.example/crawl/stream") == {
            "http": "http://envproxy:8080", "https": "http://envproxy:8080"}
    finally:
        session.close()


def test_merged_settings_keep_the_clients_verify_and_the_callers_stream(monkeypatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    session = make_session(ClientConfig(base_url="https://api.example", verify=False))
    try:
        settings = session.merge_environment_settings("https://api.example/x", {}, True, None, None)
        assert settings["verify"] is False and settings["stream"] is True
        assert settings["cert"] is None
    finally:
        session.close()
