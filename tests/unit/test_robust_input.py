"""Issue 12, bad input and secrets: one duration validator everywhere, the error tree,
the API key never shown. Each test failed before its fix (noted in the docstring)."""

from __future__ import annotations

import pytest

from riptide_sync import RetryPolicy, RipTideClient
from riptide_sync.exceptions import (
    ConfigError,
    IncompleteStreamError,
    ResultsDroppedError,
    StreamingError,
    ValidationError,
)

SECRET = "sk-live-0123456789abcdef"

BAD_DURATIONS = [float("nan"), float("inf"), float("-inf"), -1, 0, True, False, "30", b"1"]


def test_config_error_is_a_validation_error():
    """A bad base_url is bad input (docs/design.md §4). Failed before: ConfigError was a
    sibling of ValidationError."""
    with pytest.raises(ValidationError) as info:
        RipTideClient("ftp://nowhere")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)
    assert issubclass(ConfigError, ValidationError)


@pytest.mark.parametrize("name", ["timeout", "connect_timeout", "ping_interval", "ping_timeout"])
@pytest.mark.parametrize("bad", BAD_DURATIONS)
def test_client_durations_refuse_nan_inf_negative_bool(name, bad):
    """Every client duration goes through one validator, named in the error."""
    with pytest.raises(ConfigError) as info:
        RipTideClient("http://127.0.0.1:9", **{name: bad})
    assert name in str(info.value) and repr(bad) in str(info.value)
    assert info.value.field == name


@pytest.mark.parametrize("bad", BAD_DURATIONS)
def test_progress_timeout_refuses_nan_before_any_io(bad):
    """progress_timeout=nan passed and escaped later as a bare ValueError from
    socket.settimeout. Failed before (nan, inf passed)."""
    client = RipTideClient("http://127.0.0.1:9")
    for crawl in (client.streaming.crawl_websocket, client.streaming.crawl_ndjson,
                  client.streaming.crawl_sse):
        with pytest.raises(ValidationError) as info:
            crawl(["https://a.example/"], progress_timeout=bad)
        assert info.value.field == "progress_timeout"


@pytest.mark.parametrize("name", ["initial_backoff", "max_backoff", "jitter", "max_retry_after",
                                  "total_timeout", "multiplier"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, True, "1"])
def test_retry_policy_durations_refuse_nan_inf_negative_bool(name, bad):
    """RetryPolicy(initial_backoff=nan) was accepted (nan >= 0 is False, but so is
    nan < 0). Failed before for nan, inf and bools."""
    with pytest.raises(ConfigError, match=name):
        RetryPolicy(**{name: bad})


def test_api_key_not_in_repr_or_str_of_client_and_config():
    """repr(client.config) showed the key in plain text. Failed before."""
    client = RipTideClient("http://127.0.0.1:9", api_key=SECRET)
    for text in (repr(client.config), str(client.config), repr(client), str(client)):
        assert SECRET not in text
    assert "api_key='***'" in repr(client.config)
    assert client.config.headers["X-API-Key"] == SECRET  # still sent
    assert "api_key=None" in repr(RipTideClient("http://127.0.0.1:9", api_key="").config)


@pytest.mark.parametrize("bad", [SECRET + "\n", " " + SECRET, SECRET + "\x00x", "clé" + SECRET])
def test_bad_api_key_refused_without_echoing_it(bad):
    """A key no header can carry: requests' InvalidHeader pasted the key into the
    exception of the first request. Now refused up front; the message shows no key.
    Failed before: accepted, and the first request's error showed it."""
    with pytest.raises(ConfigError) as info:
        RipTideClient("http://127.0.0.1:9", api_key=bad)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert info.value.field == "api_key"


def test_results_dropped_error_is_raised_and_is_incomplete():
    """`except ResultsDroppedError` never fired (only ever a __cause__). Now the stream
    raises it when summaries short of results end the stream; it is an
    IncompleteStreamError naming the missing URLs. Failed before."""
    from riptide_sync import CrawlStream, StreamingResult, StreamStats

    def script(urls):  # "b" is never sent, though every summary counts it
        yield StreamingResult("metadata", {"total_urls": len(urls)})
        if urls[0] == "a":
            yield StreamingResult("result", {"index": 0, "result": {"url": "a"}})
        yield StreamingResult("summary", {"total_urls": len(urls), "successful": len(urls)})

    class Source:
        def __init__(self, urls):
            self.events = script(urls)

        def receive(self, timeout):
            return next(self.events)

        def close(self):
            pass

    class Transport:
        name = "scripted"
        session_id = None

        def open_crawl(self, urls, options):
            return Source(urls)

        def close(self):
            pass

    for retry in (None, RetryPolicy(max_attempts=2, initial_backoff=0, jitter=0)):
        stream = CrawlStream(Transport, ["a", "b"], None, stats=StreamStats(), retry=retry)
        with pytest.raises(ResultsDroppedError) as info:
            list(stream)
        assert isinstance(info.value, IncompleteStreamError)
        assert isinstance(info.value, StreamingError)
        assert info.value.missing == ["b"] and info.value.missing_indices == [1]
        assert "summary came with 1 result(s) missing" in str(info.value)
