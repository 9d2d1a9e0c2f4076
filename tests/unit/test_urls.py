"""Caller input validation (riptide_sync.protocol.urls): before any I/O, naming the value."""

import pytest

from riptide_sync.exceptions import ConfigError, ValidationError
from riptide_sync.protocol.urls import validate_base_url, validate_urls, websocket_url


def test_validate_urls_returns_list_unchanged():
    """A good tuple comes back as a list, in order, duplicates kept."""
    urls = ("https://a.example/", "http://b.example/x?y=1", "https://a.example/")
    assert validate_urls(urls) == list(urls)


def test_validate_urls_bare_string_says_pass_a_list():
    """A bare string is refused with a hint to wrap it in a list."""
    with pytest.raises(ValidationError, match="pass a list") as info:
        validate_urls("https://a.example/")
    assert info.value.field == "urls"


@pytest.mark.parametrize("value", [None, 5, {"https://a.example/"}, {"u": 1}])
def test_validate_urls_rejects_non_sequences(value):
    """Sets, dicts, numbers and None are not URL lists."""
    with pytest.raises(ValidationError, match="list or tuple"):
        validate_urls(value)


def test_validate_urls_rejects_empty():
    """An empty list is refused."""
    with pytest.raises(ValidationError, match="empty"):
        validate_urls([])


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("ftp://a.example/", "scheme must be http or https, got ftp"),
        ("a.example/page", "got none"),
        ("http://", "no host"),
        ("https://a.example/" + "x" * 2100, "longer than 2048 bytes"),
        (" https://a.example/", "surrounding spaces"),
        ("https://a.example/a b", "whitespace"),
        ("http://a.example:99999/", "cannot be parsed"),
        (b"https://a.example/", "expected a string"),
        ("", "absolute http"),
    ],
)
def test_validate_urls_names_bad_url_and_position(bad, reason):
    """Each bad URL is named with its position and what was expected."""
    with pytest.raises(ValidationError) as info:
        validate_urls(["https://ok.example/", bad])
    assert info.value.field == "urls[1]"
    assert info.value.value == bad
    assert reason in str(info.value)
    assert "urls[1]" in str(info.value)


def test_validate_base_url_strips_trailing_slash():
    """The base URL is kept with its path prefix, minus a trailing slash."""
    assert validate_base_url("http://h:8080/") == "http://h:8080"
    assert validate_base_url("https://h/riptide/") == "https://h/riptide"


@pytest.mark.parametrize("bad", [None, 8080, "localhost:8080", "ws://h/", "http://h/?q=1", "http://h:x/"])
def test_validate_base_url_rejects(bad):
    """Non-http(s), hostless, query-carrying or unparsable base URLs are config errors."""
    with pytest.raises(ConfigError):
        validate_base_url(bad)


@pytest.mark.parametrize(
    "base, expected",
    [
        ("http://h:8080", "ws://h:8080/crawl/ws"),
        ("https://h", "wss://h/crawl/ws"),
        ("https://h/riptide/", "wss://h/riptide/crawl/ws"),
        ("http://[::1]:9000", "ws://[::1]:9000/crawl/ws"),
    ],
)
def test_websocket_url_derivation(base, expected):
    """http -> ws, https -> wss, a path prefix kept."""
    assert websocket_url(base) == expected
