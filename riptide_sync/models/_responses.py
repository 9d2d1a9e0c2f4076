"""The response models of the wire schema (docs/protocol.md §5.3-§5.5, §7.1): results,
batch responses and health.

Tolerant: extra fields are kept, so fields the server adds later do not break old
clients. Import them from :mod:`riptide_sync.models`.

Fields spell ``Optional[X]``: pydantic evaluates them at runtime (see
:mod:`riptide_sync.models`).
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ErrorInfo(_Response):
    """``result.error`` (docs/protocol.md §5.5)."""

    error_type: str
    message: str
    retryable: bool = True


class ParserMetadata(_Response):
    parser_used: Optional[str] = None
    confidence_score: Optional[float] = None
    fallback_occurred: Optional[bool] = None
    parse_time_ms: Optional[int] = None
    extraction_path: Optional[str] = None
    primary_error: Optional[str] = None


class ExtractedDoc(_Response):
    """``result.document`` (docs/protocol.md §5.4). ``quality_score`` here is an int 0-100."""

    url: str
    title: Optional[str] = None
    text: str = ""
    quality_score: Optional[int] = None
    links: list[str] = Field(default_factory=list)
    byline: Optional[str] = None
    published_iso: Optional[str] = None
    markdown: Optional[str] = None
    media: list[str] = Field(default_factory=list)
    language: Optional[str] = None
    reading_time: Optional[int] = None
    word_count: Optional[int] = None
    categories: list[str] = Field(default_factory=list)
    site_name: Optional[str] = None
    description: Optional[str] = None
    html: Optional[str] = None
    parser_metadata: Optional[ParserMetadata] = None


Document = ExtractedDoc


class CrawlResult(_Response):
    """One URL's outcome (docs/protocol.md §5.3). A failed URL has ``error`` set, ``document`` None."""

    url: str
    status: int = 0
    from_cache: bool = False
    gate_decision: str = "unknown"
    quality_score: float = 0.0
    processing_time_ms: int = 0
    document: Optional[ExtractedDoc] = None
    error: Optional[ErrorInfo] = None
    cache_key: str = ""

    @property
    def ok(self) -> bool:
        """True when the URL was fetched and extracted: no ``error`` and an HTTP status in
        1..399. The real server reports a failed fetch, a non-2xx origin page included, as
        ``error`` set and ``status`` 0; a server that passes origin errors through
        (status 404, no ``error``) is a failure here too. The one definition of success
        used by the CLI, the demo and the summaries the SDK builds."""
        return self.error is None and 0 < self.status < 400


class GateDecisions(_Response):
    raw: int = 0
    probes_first: int = 0
    headless: int = 0
    cached: int = 0


class CrawlStatistics(_Response):
    total_processing_time_ms: int = 0
    avg_processing_time_ms: float = 0.0
    gate_decisions: GateDecisions = Field(default_factory=GateDecisions)
    cache_hit_rate: float = 0.0


class CrawlResponse(_Response):
    """The batch response of ``POST /crawl`` (docs/protocol.md §4); results in request order."""

    total_urls: int
    successful: int
    failed: int
    from_cache: int = 0
    results: list[CrawlResult] = Field(default_factory=list)
    statistics: CrawlStatistics = Field(default_factory=CrawlStatistics)


class ServiceHealth(_Response):
    status: str
    message: Optional[str] = None
    response_time_ms: Optional[int] = None
    last_check: Optional[str] = None


class HealthResponse(_Response):
    """``GET /healthz`` (docs/protocol.md §7.1). ``status`` is healthy, degraded or unhealthy."""

    status: str
    version: Optional[str] = None
    timestamp: Optional[str] = None
    uptime: Optional[int] = None
    """Seconds since the server started, or None when not reported."""
    dependencies: dict[str, Optional[ServiceHealth]] = Field(default_factory=dict)
    metrics: Optional[dict[str, Any]] = None

    @property
    def healthy(self) -> bool:
        """True for ``healthy`` and ``degraded`` (the server answers 200 for both)."""
        return self.status in ("healthy", "degraded")
