"""RipTideClient configuration: env fallbacks, validation before any I/O, public surface."""

import pytest

import riptide_sync
from riptide_sync import RipTideClient
from riptide_sync.exceptions import ConfigError, ValidationError


def test_client_defaults_to_localhost_8080():
    """No base_url and no env: http://localhost:8080, no key."""
    client = RipTideClient()
    assert client.base_url == "http://localhost:8080"
    assert client.config.api_key is None
    assert "X-API-Key" not in client.config.headers


def test_client_reads_env(monkeypatch):
    """RIPTIDE_BASE_URL and RIPTIDE_API_KEY are the fallbacks."""
    monkeypatch.setenv("RIPTIDE_BASE_URL", "https://riptide.example/api/")
    monkeypatch.setenv("RIPTIDE_API_KEY", "k-123")
    client = RipTideClient()
    assert client.base_url == "https://riptide.example/api"
    assert client.config.headers["X-API-Key"] == "k-123"


def test_client_explicit_arguments_beat_env(monkeypatch):
    """Arguments win over the environment; an empty key sends none."""
    monkeypatch.setenv("RIPTIDE_BASE_URL", "http://env:1")
    monkeypatch.setenv("RIPTIDE_API_KEY", "env-key")
    client = RipTideClient("http://arg:2", api_key="")
    assert client.base_url == "http://arg:2"
    assert client.config.api_key is None


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"base_url": "localhost:8080"}, "base_url"),
        ({"base_url": 8080}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"connect_timeout": None}, "connect_timeout"),
        ({"ping_interval": -1}, "ping_interval"),
        ({"queue_size": 0}, "queue_size"),
        ({"queue_size": 10.5}, "queue_size"),
        ({"overflow": "discard"}, "overflow"),
        ({"max_message_size": 0}, "max_message_size"),
        ({"retry": "yes"}, "retry"),
        ({"api_key": 123}, "api_key"),
        ({"verify": "x" and 3}, "verify"),
    ],
)
def test_client_bad_config_raises_config_error(kwargs, fragment):
    """Each bad setting is named in a ConfigError (also a ValueError)."""
    with pytest.raises(ConfigError, match=fragment):
        RipTideClient(**kwargs)
    with pytest.raises(ValueError):
        RipTideClient(**kwargs)


def test_client_none_durations_mean_no_limit():
    """timeout/ping_interval/ping_timeout accept None (no limit)."""
    client = RipTideClient(timeout=None, ping_interval=None, ping_timeout=None)
    assert client.config.timeout is None and client.config.ping_interval is None


def test_client_bad_calls_fail_before_io():
    """Bad input to every call raises ValidationError; the client never connects."""
    client = RipTideClient("http://127.0.0.1:9")  # discard port: nothing listens
    for call in (client.streaming.crawl_websocket, client.streaming.crawl_ndjson,
                 client.streaming.crawl_sse, client.crawl):
        with pytest.raises(ValidationError, match="pass a list"):
            call("https://example.com")
    with pytest.raises(ValidationError, match="websocket_url"):
        client.streaming.ping_websocket("http://127.0.0.1:9/crawl/ws")
    with pytest.raises(ValidationError, match="not callable|callable"):
        client.streaming.crawl_websocket(["https://a.example"], on_message="print")


def test_client_context_manager_closes_session():
    """Leaving with closes the HTTP pool; close() is idempotent."""
    with RipTideClient() as client:
        assert client.http is client.http
    assert client._session is None
    client.close()


def test_public_names_exported():
    """Every name in __all__ exists, and the contract's names are importable from the root."""
    for name in riptide_sync.__all__:
        assert hasattr(riptide_sync, name), name
    from riptide_sync import CacheMode, CrawlOptions, RetryPolicy, RipTideClient  # noqa: F401
    from riptide_sync.exceptions import (  # noqa: F401
        APIError, AuthenticationError, RateLimitError, RipTideError, StreamingError, ValidationError)
    from riptide_sync.models import CrawlResult, StreamingResult  # noqa: F401


def test_exception_tree_doubles_as_builtins():
    """Catching the builtins works too: ConnectionError, TimeoutError, ValueError."""
    from riptide_sync import exceptions as e

    assert issubclass(e.StreamConnectionError, ConnectionError)
    assert issubclass(e.StreamTimeoutError, TimeoutError)
    assert issubclass(e.KeepaliveTimeoutError, e.StreamTimeoutError)
    assert issubclass(e.ValidationError, ValueError)
    for name in e.__all__:
        assert issubclass(getattr(e, name), e.RipTideError)


def test_api_error_str_reads_as_sentence():
    """Status, type, message and request id all show in str()."""
    from riptide_sync.exceptions import APIError, IncompleteStreamError, RateLimitError

    err = APIError("Invalid URL: x", status_code=400, error_type="invalid_url", request_id="r-1")
    assert str(err) == "HTTP 400 invalid_url: Invalid URL: x (request id r-1)"
    assert "retry after 60 s" in str(RateLimitError("slow", status_code=429, retry_after=60.0))
    text = str(IncompleteStreamError("gave up", missing=[f"u{i}" for i in range(7)]))
    assert "7 URL(s) missing" in text and "and 2 more" in text


# --- one validation, one sentinel, OverflowPolicy (issue 15) ------------------------------


@pytest.mark.parametrize(
    "name, bad",
    [
        ("queue_size", 0),
        ("max_message_size", True),
        ("max_urls_per_request", 2.0),
        ("parallel", -1),
        ("overflow", "discard"),
        ("verify", 3),
        ("verify", "/nonexistent/ca-bundle.pem"),
        ("proxy", 8080),
        ("retry", "yes"),
    ],
)
def test_every_bad_setting_names_itself_in_field(name, bad):
    """Each ConfigError says which setting is at fault in ``field`` (the ValidationError
    contract), not only in its text. Failed before for all but the durations and api_key:
    field was None."""
    with pytest.raises(ConfigError) as info:
        RipTideClient("http://127.0.0.1:9", **{name: bad})
    assert info.value.field == name
    assert name in str(info.value) and repr(bad) in str(info.value)


def test_client_config_validates_when_built_directly():
    """A ClientConfig is checked and normalized whoever builds it (one validation, not one
    per caller): the same ConfigError as through RipTideClient."""
    from riptide_sync._config import ClientConfig, OverflowPolicy

    config = ClientConfig(base_url="http://h:1/api/", timeout=5, overflow="block")
    assert config.base_url == "http://h:1/api"
    assert config.timeout == 5.0 and isinstance(config.timeout, float)
    assert config.overflow is OverflowPolicy.BLOCK
    for bad in ({"queue_size": 0}, {"timeout": float("nan")}, {"overflow": "lose"},
                {"base_url": "ftp://h"}, {"user_agent": ""}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            ClientConfig(**{"base_url": "http://h", **bad})


def test_overflow_policy_is_one_str_enum_end_to_end():
    """The strings still work and compare equal; the message lists the enum's values."""
    from riptide_sync._config import OVERFLOW_POLICIES, OverflowPolicy

    assert OVERFLOW_POLICIES == tuple(policy.value for policy in OverflowPolicy)
    assert OVERFLOW_POLICIES == ("spill", "block", "drop_oldest", "drop_newest", "error")
    for value in OVERFLOW_POLICIES:
        config = RipTideClient("http://127.0.0.1:9", overflow=value).config
        assert config.overflow == value and config.overflow is OverflowPolicy(value)
        assert str(config.overflow) == value and f"{config.overflow}" == value
    assert RipTideClient("http://127.0.0.1:9").config.overflow is OverflowPolicy.SPILL
    assert RipTideClient("http://127.0.0.1:9",
                         overflow=OverflowPolicy.ERROR).config.overflow is OverflowPolicy.ERROR
    assert [p for p in OverflowPolicy if p.drops] == [OverflowPolicy.DROP_OLDEST,
                                                      OverflowPolicy.DROP_NEWEST]
    with pytest.raises(ConfigError) as info:
        RipTideClient("http://127.0.0.1:9", overflow="SPILL")
    assert str(info.value) == ("overflow must be one of spill, block, drop_oldest, drop_newest, "
                               "error, got 'SPILL'")


def test_per_call_settings_use_the_same_checks_as_validation_errors():
    """parallel= and checkpoint= per call: the client's wording, as a ValidationError that
    is not a ConfigError (a bad call, not a bad client)."""
    client = RipTideClient("http://127.0.0.1:9")
    for kwargs, name in (({"parallel": 0}, "parallel"), ({"checkpoint": 3}, "checkpoint")):
        with pytest.raises(ValidationError) as info:
            client.streaming.crawl_ndjson(["https://a.example/"], **kwargs)
        assert not isinstance(info.value, ConfigError) and info.value.field == name
    with pytest.raises(ValidationError, match=r"^parallel must be an int >= 1, got 0$"):
        client.streaming.crawl_sse(["https://a.example/"], parallel=0)
    with pytest.raises(ConfigError, match=r"^parallel must be an int >= 1, got 0$"):
        RipTideClient("http://127.0.0.1:9", parallel=0)


def test_unset_is_one_typed_sentinel_that_reads_well():
    """Not given is UNSET (repr "<default>"); None is a value of its own (no retries)."""
    from riptide_sync._config import UNSET

    assert repr(UNSET) == "<default>"
    client = RipTideClient("http://127.0.0.1:9", retry=5)
    assert client._policy(UNSET) is client.retry
    assert client._policy(None).max_attempts == 1
    assert RipTideClient("http://127.0.0.1:9").retry.max_attempts == 4


def test_help_shows_no_object_addresses():
    """help(RipTideClient), help(crawl_websocket) and help(riptide_sync) read well: the
    defaults showed as retry=<object object at 0x...> and rng=<built-in method random of
    Random object at 0x...>. Failed before."""
    import pydoc

    client = RipTideClient("http://127.0.0.1:9")
    for target in (RipTideClient, client.streaming.crawl_websocket, client.streaming.crawl_sse,
                   riptide_sync):
        text = pydoc.render_doc(target)
        assert "object at 0x" not in text
    assert "= <default>" in pydoc.render_doc(RipTideClient)
