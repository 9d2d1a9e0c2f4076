"""Batch crawl (``POST /crawl``, docs/protocol.md §4) and health (``GET /healthz``, §7.1)."""

from __future__ import annotations

from typing import Any, Sequence

import requests

from .._config import ClientConfig
from ..exceptions import ProtocolViolationError
from ..models import CrawlResponse, CrawlStatistics, GateDecisions, HealthResponse
from ..retry import RetryPolicy
from .errors import raise_for_response, translate_errors
from .session import request_timeout, url_for

__all__ = ["crawl_batch", "get_health", "merge_responses"]


def _chunks(urls: Sequence[str], size: int) -> list[list[str]]:
    size = max(1, size)
    return [list(urls[i : i + size]) for i in range(0, len(urls), size)]


def crawl_batch(
    session: requests.Session,
    config: ClientConfig,
    urls: Sequence[str],
    options: dict[str, Any] | None,
    retry: RetryPolicy | None = None,
) -> CrawlResponse:
    """Crawl ``urls`` with ``POST /crawl``; results come back in the order of ``urls``.

    A list longer than ``config.max_urls_per_request`` (the server's limit, 100, §6.1) is
    sent as several requests, one after the other, and merged by :func:`merge_responses`.
    The server answers a batch only when every URL is done, within its 30 s response
    timeout (408 after that, §4): use a stream for long lists.

    Args:
        session: the client's session (:func:`make_session`).
        config: the client's configuration (base URL, timeouts, URL limit).
        urls: validated absolute URLs.
        options: the wire form of the crawl options, or None (omitted: server defaults).
        retry: the policy each chunk's request is retried under (a chunk that succeeded is
            never sent again); None: no retry.

    Raises:
        APIError subclasses: a request got an error status (no partial result is returned).
        ProtocolViolationError: a 200 whose body is not a crawl response.
        StreamConnectionError, StreamTimeoutError: the server could not be reached in time.
    """
    url = url_for(config, "/crawl")
    policy = retry if retry is not None else RetryPolicy(max_attempts=1)
    responses = [
        policy.retrying()(_crawl_chunk, session, config, url, chunk, options)
        for chunk in _chunks(urls, config.max_urls_per_request)
    ]
    if len(responses) == 1:
        return responses[0]
    return merge_responses(responses)


def _crawl_chunk(
    session: requests.Session,
    config: ClientConfig,
    url: str,
    chunk: list[str],
    options: dict[str, Any] | None,
) -> CrawlResponse:
    """One ``POST /crawl`` of one chunk (one attempt)."""
    body: dict[str, Any] = {"urls": chunk}
    if options is not None:
        body["options"] = options
    with translate_errors(f"POST {url}", url):
        response = session.post(url, json=body, timeout=request_timeout(config))
    with response:
        if response.status_code != 200:
            raise_for_response(response)
        try:
            payload = response.json()
            return CrawlResponse.model_validate(payload)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise ProtocolViolationError(
                f"POST {url} answered 200 with a body that is not a crawl response "
                f"({exc}): {response.text[:200]!r}"
            ) from exc


def merge_responses(responses: Sequence[CrawlResponse]) -> CrawlResponse:
    """Merge the responses of consecutive chunks of one URL list into one response.

    - ``total_urls``, ``successful``, ``failed``, ``from_cache``: summed.
    - ``results``: concatenated (each chunk is in request order, so the whole is too).
    - ``statistics.total_processing_time_ms``: the sum of the chunks' totals. The chunks run
      one after the other, so this is the server-side wall time of the whole list (it
      leaves out the client's own time between requests).
    - ``statistics.avg_processing_time_ms``: the mean over successful URLs, i.e. the
      chunks' averages weighted by their ``successful`` counts (0.0 when none succeeded).
    - ``statistics.gate_decisions``: summed key by key (unknown keys too).
    - ``statistics.cache_hit_rate``: ``from_cache / total_urls`` (0.0 for no URLs), as the
      server computes it.
    """
    total = sum(r.total_urls for r in responses)
    successful = sum(r.successful for r in responses)
    from_cache = sum(r.from_cache for r in responses)
    weighted = sum(r.statistics.avg_processing_time_ms * r.successful for r in responses)
    gates: dict[str, int] = {}
    for response in responses:
        for key, value in response.statistics.gate_decisions.model_dump().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                gates[key] = gates.get(key, 0) + int(value)
    statistics = CrawlStatistics(
        total_processing_time_ms=sum(r.statistics.total_processing_time_ms for r in responses),
        avg_processing_time_ms=weighted / successful if successful else 0.0,
        gate_decisions=GateDecisions(**gates),
        cache_hit_rate=from_cache / total if total else 0.0,
    )
    return CrawlResponse(
        total_urls=total,
        successful=successful,
        failed=sum(r.failed for r in responses),
        from_cache=from_cache,
        results=[result for r in responses for result in r.results],
        statistics=statistics,
    )


def get_health(session: requests.Session, config: ClientConfig) -> HealthResponse:
    """``GET /healthz`` (no key needed, §7.1).

    A 503 whose body is a health report (``status`` ``"unhealthy"``) is returned as a
    result, not raised: check :attr:`HealthResponse.healthy`.

    Raises:
        APIError subclasses: any other error status (e.g. a 503 or 429 from the rate
            limiter, §7.3, which carries an error body instead of a report).
        StreamConnectionError, StreamTimeoutError: the server could not be reached in time.
        ProtocolViolationError: a 200 without a readable health report.
    """
    url = url_for(config, "/healthz")
    with translate_errors(f"GET {url}", url):
        response = session.get(url, timeout=request_timeout(config))
    with response:
        if response.status_code in (200, 503):
            try:
                payload = response.json()
            except ValueError:
                payload = None
            if isinstance(payload, dict) and isinstance(payload.get("status"), str):
                try:
                    return HealthResponse.model_validate(payload)
                except ValueError as exc:
                    raise ProtocolViolationError(
                        f"GET {url}: unreadable health report ({exc})"
                    ) from exc
            if response.status_code == 200:
                raise ProtocolViolationError(
                    f"GET {url} answered 200 without a health report: {response.text[:200]!r}"
                )
        raise_for_response(response)
    raise AssertionError("unreachable")  # pragma: no cover - raise_for_response always raises
