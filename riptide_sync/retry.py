"""Retry policy, built on tenacity: which failures are retried, and how long to wait.

A :class:`RetryPolicy` is a small immutable value. :meth:`RetryPolicy.retrying` turns it into
a ``tenacity.Retrying`` for one call; :func:`is_retryable` is the classification both the
HTTP calls and the stream (re)openings use:

- retried: connection failures (refused, reset, dropped mid-stream), timeouts, results
  the server dropped (a summary short of results: ``ResultsDroppedError``),
  5xx statuses, 429 and 503 (waiting at least ``Retry-After``, up to ``max_retry_after``);
- never retried: 401/403 (``AuthenticationError``), other 4xx, bad input
  (``ValidationError``, ``ConfigError``), a slow consumer, and anything not ours.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any, Callable

import tenacity

from ._config import check_count, check_duration, check_number
from .exceptions import (
    TLSVerificationError,
    APIError,
    AuthenticationError,
    ConfigError,
    RateLimitError,
    ResultsDroppedError,
    ServerError,
    SlowConsumerError,
    StreamConnectionError,
    StreamTimeoutError,
)

__all__ = ["RetryPolicy", "RetryTracker", "is_retryable", "coerce_retry"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Args:
        max_attempts: attempts in all, the first included (1 = no retry).
        initial_backoff: seconds before the first retry.
        max_backoff: the cap of one wait, in seconds.
        multiplier: growth of the wait per attempt (exponential backoff).
        jitter: up to this many seconds of random extra wait, so clients do not retry in step.
        total_timeout: seconds from the first attempt after which no new attempt starts;
            None means no time budget (attempts still bound it).
        max_retry_after: the longest ``Retry-After`` honoured, in seconds; a server asking
            for more makes the call fail at once instead of sleeping that long.
        sleep: the function that waits (tests pass a recorder); it must accept seconds.

    Usage::

        RipTideClient(retry=RetryPolicy(max_attempts=5, max_backoff=10))
        RipTideClient(retry=3)      # 3 attempts, default waits
        RipTideClient(retry=None)   # no retries
    """

    max_attempts: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.25
    total_timeout: float | None = 120.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], Any] = dataclasses.field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        check_count("max_attempts", self.max_attempts, error=ConfigError)
        for name in ("initial_backoff", "max_backoff", "jitter", "max_retry_after"):
            check_duration(name, getattr(self, name), optional=False, zero_ok=True, error=ConfigError)
        check_duration("total_timeout", self.total_timeout, optional=True, error=ConfigError)
        check_number("multiplier", self.multiplier, zero_ok=True, error=ConfigError)
        if not callable(self.sleep):
            raise ConfigError(f"sleep must be callable, got {self.sleep!r}", field="sleep")

    def backoff(self, retry_number: int, rng: Callable[[], float] | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry), jitter
        included: ``rng()`` in [0, 1) scales it (None: ``random.random``)."""
        base = self.initial_backoff * self.multiplier ** (retry_number - 1)
        return min(self.max_backoff, base) + self.jitter * (rng or random.random)()

    def wait_for(self, exc: BaseException | None, retry_number: int) -> float:
        """Seconds to wait before retrying after ``exc``: the backoff, or the server's
        ``Retry-After`` when that is longer."""
        wait = self.backoff(retry_number)
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return wait

    def allows_retry_after(self, exc: BaseException) -> bool:
        """False when the server asked us to wait longer than ``max_retry_after``."""
        return not (
            isinstance(exc, RateLimitError)
            and exc.retry_after is not None
            and exc.retry_after > self.max_retry_after
        )

    def retrying(self) -> tenacity.Retrying:
        """A ``tenacity.Retrying`` for one call under this policy (``reraise=True``, so
        callers see our exception, never ``RetryError``)."""
        stop: Any = tenacity.stop_after_attempt(self.max_attempts)
        if self.total_timeout is not None:
            stop = stop | tenacity.stop_after_delay(self.total_timeout)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(exc, state.attempt_number)

        def should_retry(state: tenacity.RetryCallState) -> bool:
            if state.outcome is None or not state.outcome.failed:
                return False
            exc = state.outcome.exception()
            return exc is not None and is_retryable(exc) and self.allows_retry_after(exc)

        return tenacity.Retrying(
            stop=stop, wait=wait, retry=should_retry, sleep=self.sleep, reraise=True
        )


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth another attempt (see the module docstring)."""
    if isinstance(exc, (AuthenticationError, SlowConsumerError, TLSVerificationError)):
        return False  # a certificate failure is final: the next attempt meets the same one
    if isinstance(exc, RateLimitError):
        return True
    if isinstance(exc, ServerError):
        return True
    if isinstance(exc, APIError):
        status = exc.status_code
        return status is not None and (status == 408 or status >= 500)
    return isinstance(exc, (StreamConnectionError, StreamTimeoutError, ResultsDroppedError))


_NO_RETRY = RetryPolicy(max_attempts=1)


def coerce_retry(retry: RetryPolicy | int | None) -> RetryPolicy:
    """Accept what ``RipTideClient(retry=...)`` takes: a policy, an int (max attempts),
    or None / 0 (retries off)."""
    if retry is None or retry is False:
        return _NO_RETRY
    if isinstance(retry, RetryPolicy):
        return retry
    if type(retry) is int:
        if retry < 0:
            raise ConfigError(f"retry must be >= 0 attempts, got {retry}", field="retry",
                              value=retry)
        return _NO_RETRY if retry <= 1 else RetryPolicy(max_attempts=retry)
    raise ConfigError(
        f"retry must be a RetryPolicy, an int (max attempts) or None, got {retry!r}",
        field="retry",
        value=retry,
    )


class RetryTracker:
    """A streak of failures under one policy, decided by tenacity's own strategies.

    Streams cannot run inside ``tenacity.Retrying`` (its attempt context swallows
    ``GeneratorExit`` and ``KeyboardInterrupt``, and a generator must never be decorated),
    so the stream driver asks this tracker after each failure whether to try again and how
    long to wait first. A stream that makes progress calls :meth:`reset`: the policy bounds
    consecutive failures, so a long crawl through a server that drops every 150 results
    still completes.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._retrying = policy.retrying()
        self._state: tenacity.RetryCallState | None = None

    @property
    def failures(self) -> int:
        """Failures in the current streak."""
        return 0 if self._state is None else self._state.attempt_number

    def reset(self) -> None:
        """Progress was made: the next failure starts a new streak."""
        self._state = None

    def next_delay(self, exc: BaseException) -> float | None:
        """Record a failure; return the seconds to wait before trying again, or None to
        give up (not retryable, attempts or time budget used up, Retry-After too long)."""
        if self._state is None:
            self._state = tenacity.RetryCallState(self._retrying, fn=None, args=(), kwargs={})
        else:
            self._state.prepare_for_next_attempt()
        self._state.set_exception((type(exc), exc, exc.__traceback__))
        if not self._retrying.retry(self._state) or self._retrying.stop(self._state):
            return None
        return float(self._retrying.wait(self._state))
