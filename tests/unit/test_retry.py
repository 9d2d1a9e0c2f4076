"""RetryPolicy on tenacity: classification, backoff and Retry-After, with injected sleep."""

import pytest

from riptide_sync import RetryPolicy
from riptide_sync.exceptions import (
    APIError,
    AuthenticationError,
    ConfigError,
    IncompleteStreamError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SlowConsumerError,
    StreamConnectionError,
    StreamTimeoutError,
    ValidationError,
)
from riptide_sync.retry import coerce_retry, is_retryable


@pytest.mark.parametrize(
    "exc, expected",
    [
        (StreamConnectionError("refused"), True),
        (StreamTimeoutError("slow"), True),
        (ServerError("boom", status_code=500), True),
        (RateLimitError("slow down", status_code=429), True),
        (APIError("timeout", status_code=408), True),
        (APIError("bad gateway", status_code=502), True),
        (AuthenticationError("no", status_code=401), False),
        (AuthenticationError("no", status_code=403), False),
        (NotFoundError("no", status_code=404), False),
        (APIError("bad", status_code=400), False),
        (APIError("ws error", status_code=None), False),
        (ValidationError("bad input"), False),
        (SlowConsumerError("behind"), False),
        (IncompleteStreamError("gave up"), False),
        (RuntimeError("not ours"), False),
    ],
)
def test_is_retryable_classification(exc, expected):
    """Connect/read failures, 5xx, 408, 429 and 503 retry; auth, 4xx and bad input never."""
    assert is_retryable(exc) is expected


def test_backoff_is_exponential_with_cap():
    """Waits double from initial_backoff up to max_backoff; jitter adds at most `jitter`."""
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=3.0, multiplier=2.0, jitter=0.25)
    assert [policy.backoff(n, rng=lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(1, rng=lambda: 1.0) == 0.75


def test_retrying_sleeps_then_succeeds():
    """Two connection failures then success: two recorded sleeps, the value returned."""
    sleeps = []
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.1, jitter=0.0, sleep=sleeps.append)
    outcomes = [StreamConnectionError("a"), StreamConnectionError("b"), "ok"]

    def call():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert policy.retrying()(call) == "ok"
    assert sleeps == [0.1, 0.2]


def test_retrying_gives_up_with_our_exception():
    """After max_attempts the last error is raised as itself (reraise, no RetryError)."""
    sleeps = []
    policy = RetryPolicy(max_attempts=3, jitter=0.0, sleep=sleeps.append)
    calls = []

    def call():
        calls.append(1)
        raise ServerError("down", status_code=500)

    with pytest.raises(ServerError):
        policy.retrying()(call)
    assert len(calls) == 3 and len(sleeps) == 2


def test_retrying_never_retries_auth():
    """401 fails at once, no sleep."""
    sleeps = []
    policy = RetryPolicy(sleep=sleeps.append)
    with pytest.raises(AuthenticationError):
        policy.retrying()(lambda: (_ for _ in ()).throw(AuthenticationError("no", status_code=401)))
    assert sleeps == []


def test_retrying_honours_retry_after():
    """A 429 with Retry-After 7 waits 7 s, longer than the backoff."""
    sleeps = []
    policy = RetryPolicy(initial_backoff=0.5, jitter=0.0, sleep=sleeps.append)
    outcomes = [RateLimitError("slow", status_code=429, retry_after=7.0), "ok"]

    def call():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert policy.retrying()(call) == "ok"
    assert sleeps == [7.0]


def test_retrying_refuses_retry_after_above_ceiling():
    """A server asking for more than max_retry_after fails at once instead of sleeping."""
    sleeps = []
    policy = RetryPolicy(max_retry_after=10.0, sleep=sleeps.append)
    with pytest.raises(RateLimitError):
        policy.retrying()(lambda: (_ for _ in ()).throw(
            RateLimitError("slow", status_code=429, retry_after=3600.0)))
    assert sleeps == []


@pytest.mark.parametrize(
    "value, attempts", [(None, 1), (0, 1), (1, 1), (5, 5), (RetryPolicy(max_attempts=2), 2)]
)
def test_coerce_retry_forms(value, attempts):
    """retry= takes a policy, an int of attempts, or None/0 for off."""
    assert coerce_retry(value).max_attempts == attempts


@pytest.mark.parametrize("value", ["3", 2.5, -1])
def test_coerce_retry_rejects(value):
    """Other values are configuration errors."""
    with pytest.raises(ConfigError):
        coerce_retry(value)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_backoff": -1}, {"total_timeout": 0}, {"sleep": 5}],
)
def test_retry_policy_validates_fields(kwargs):
    """Nonsense settings are refused when the policy is built."""
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_attempts": 0}, "max_attempts must be an int >= 1, got 0"),
        ({"max_attempts": True}, "max_attempts must be an int >= 1, got True"),
        ({"multiplier": -1}, "multiplier must be a finite number >= 0, got -1"),
        ({"initial_backoff": -1},
         "initial_backoff must be a finite number of seconds >= 0, got -1"),
        ({"total_timeout": 0},
         "total_timeout must be a finite number of seconds > 0 or None, got 0"),
    ],
)
def test_retry_policy_errors_name_the_field_and_what_was_expected(kwargs, message):
    """The shared checkers' wording, and the field at fault in ``field``."""
    with pytest.raises(ConfigError) as info:
        RetryPolicy(**kwargs)
    assert str(info.value) == message
    assert info.value.field == next(iter(kwargs))


def test_retry_policy_has_no_enabled_property():
    """RetryPolicy.enabled was never read (dead code, issue 15): max_attempts > 1 says it."""
    assert not hasattr(RetryPolicy(), "enabled")
