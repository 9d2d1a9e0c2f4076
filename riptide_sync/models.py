"""Models of the RipTide wire schema (docs/protocol.md §5) and the stream event type.

Request models (``CrawlOptions``, ``ChunkingConfig``) are strict: an unknown field or a bad
type raises :class:`~riptide_sync.exceptions.ValidationError` naming it, before anything is
sent. Response models allow extra fields, so fields the server adds later do not break old
clients. :class:`StreamingResult` is a plain slotted class, not a pydantic model: one is
built per message on the hot path, and typed access (``event.result``) is computed lazily.

Pydantic evaluates field annotations at runtime, so fields spell ``Optional[X]`` and
``Union[...]``: Python 3.9 has no ``X | Y`` at runtime, even with ``from __future__``.
"""

from __future__ import annotations

import enum
from typing import Any, Mapping, Optional, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ._config import check_duration
from .exceptions import ValidationError

__all__ = [
    "CacheMode",
    "RenderMode",
    "OutputFormat",
    "ChunkingConfig",
    "CrawlOptions",
    "ErrorInfo",
    "ParserMetadata",
    "ExtractedDoc",
    "Document",
    "CrawlResult",
    "GateDecisions",
    "CrawlStatistics",
    "CrawlResponse",
    "ServiceHealth",
    "HealthResponse",
    "StreamingResult",
    "EVENT_TYPES",
    "coerce_options",
]


class CacheMode(str, enum.Enum):
    """How the server's cache is used for a crawl (docs/protocol.md §5.2 ``cache_mode``).

    The server treats ``cache_mode`` as a free string: only ``"bypass"`` changes anything
    (no cache read, no cache write); every other value reads and writes, and becomes part
    of the cache key. The async SDK's ``NONE`` is kept for seed code, and sends
    ``"bypass"`` so that it really disables the cache (docs/protocol.md §8 row 10).
    """

    READ_THROUGH = "read_through"
    READ_WRITE = "read_write"
    READ = "read"
    WRITE = "write"
    ENABLED = "enabled"
    BYPASS = "bypass"
    NONE = "bypass"  # alias of BYPASS: the server has no "none" mode


class RenderMode(str, enum.Enum):
    """``render_mode``; the wire values are PascalCase and case-sensitive."""

    STATIC = "Static"
    DYNAMIC = "Dynamic"
    ADAPTIVE = "Adaptive"
    PDF = "Pdf"
    HTML = "Html"
    MARKDOWN = "Markdown"


class OutputFormat(str, enum.Enum):
    """``output_format``; the wire values are PascalCase and case-sensitive."""

    DOCUMENT = "Document"
    NDJSON = "NdJson"
    CHUNKED = "Chunked"
    TEXT = "Text"
    MARKDOWN = "Markdown"


def _match_enum_value(enum_type: type[enum.Enum], value: Any) -> Any:
    """Accept an enum member, or its wire value in any letter case ("static" -> Static)."""
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        for member in enum_type:
            if member.value.lower() == value.lower():
                return member
    return value


class _Request(BaseModel):
    """Strict request model: construction errors become our ValidationError."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise _translate(exc, "options") from exc

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except pydantic.ValidationError as exc:
            raise _translate(exc, "options") from exc


class TopicConfig(_Request):
    window_size: StrictInt
    smoothing_passes: StrictInt
    topic_chunking: StrictBool


class ChunkingConfig(_Request):
    """The server's chunking options (docs/protocol.md §5.2; applied by batch only)."""

    chunking_mode: StrictStr = Field(pattern=r"^(topic|sliding|fixed|sentence|html-aware)$")
    chunk_size: StrictInt = Field(ge=0)
    overlap_size: StrictInt = Field(ge=0)
    min_chunk_size: StrictInt = Field(ge=0)
    preserve_sentences: StrictBool = True
    topic_config: Optional[TopicConfig] = None


# Fields of CrawlOptions that stay on the client: the server has no such field (docs/protocol.md
# §5.2 "no timeout_secs") and would ignore it; the client uses it for its deadlines.
_CLIENT_ONLY_FIELDS = frozenset({"timeout_secs"})


class CrawlOptions(_Request):
    """Options of a crawl. Every field is optional; ``None`` means "server default".

    The guide's fields (``cache_mode``, ``concurrency``, ``timeout_secs``) and the server's
    (docs/protocol.md §5.2) are both accepted::

        CrawlOptions(cache_mode=CacheMode.READ_WRITE, concurrency=5, timeout_secs=30)

    ``timeout_secs`` is not sent: the server has a fixed per-URL limit (15 s + 15 s). The
    client uses it to bound how long a stream may go without progress.
    """

    cache_mode: Optional[CacheMode] = None
    concurrency: Optional[StrictInt] = Field(default=None, ge=0)
    timeout_secs: Optional[float] = None
    """Per-URL time limit in seconds (client side), or None for the server's 30 s."""
    dynamic_wait_for: Optional[StrictStr] = None
    scroll_steps: Optional[StrictInt] = Field(default=None, ge=0)
    token_chunk_max: Optional[StrictInt] = Field(default=None, ge=0)
    token_overlap: Optional[StrictInt] = Field(default=None, ge=0)
    render_mode: Optional[RenderMode] = None
    output_format: Optional[OutputFormat] = None
    use_spider: Optional[StrictBool] = None
    spider_max_depth: Optional[StrictInt] = Field(default=None, ge=0)
    spider_strategy: Optional[StrictStr] = None
    chunking_config: Optional[ChunkingConfig] = None
    skip_extraction: Optional[StrictBool] = None

    @pydantic.field_validator("cache_mode", mode="before")
    @classmethod
    def _known_cache_mode(cls, value: Any) -> Any:
        # Strict: a typo ("bypas") would be sent and become part of the server's cache key.
        return _match_enum_value(CacheMode, value)

    @pydantic.field_validator("timeout_secs", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        try:
            return check_duration("timeout_secs", value, optional=True)
        except ValidationError as exc:  # pydantic names the field; keep one message
            raise ValueError(exc.message) from None

    @pydantic.field_validator("render_mode", mode="before")
    @classmethod
    def _any_case_render_mode(cls, value: Any) -> Any:
        return _match_enum_value(RenderMode, value)

    @pydantic.field_validator("output_format", mode="before")
    @classmethod
    def _any_case_output_format(cls, value: Any) -> Any:
        return _match_enum_value(OutputFormat, value)

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON object sent as ``options``: only the fields that were set."""
        return self.model_dump(mode="json", exclude_none=True, exclude=set(_CLIENT_ONLY_FIELDS))


def coerce_options(options: CrawlOptions | Mapping[str, Any] | None) -> CrawlOptions | None:
    """Turn what a caller passed as ``options`` into a validated :class:`CrawlOptions`.

    Args:
        options: a ``CrawlOptions``, a mapping of its fields, or ``None`` (server defaults).

    Raises:
        ValidationError: an unknown field, a bad type or an out-of-range value; the message
            names the field and the value.
    """
    if options is None or isinstance(options, CrawlOptions):
        return options
    if not isinstance(options, Mapping):
        raise ValidationError(
            f"options must be a CrawlOptions, a dict or None, not {type(options).__name__}: "
            f"{options!r}",
            field="options",
            value=options,
        )
    bad_keys = [key for key in options if not isinstance(key, str)]
    if bad_keys:
        raise ValidationError(
            f"options keys must be strings, got {bad_keys[0]!r}", field="options", value=options
        )
    return CrawlOptions(**options)


def _translate(exc: pydantic.ValidationError, prefix: str) -> ValidationError:
    """Turn pydantic's error into ours, naming the first bad field and its value."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    field = f"{prefix}.{loc}" if loc else prefix
    inner = (first.get("ctx") or {}).get("error")
    if isinstance(inner, ValidationError):
        # A nested request model (ChunkingConfig) already translated its own error:
        # re-root its field under ours.
        inner_field = (inner.field or "").removeprefix(prefix + ".")
        field = f"{field}.{inner_field}" if inner_field else field
        return ValidationError(
            inner.message.replace(inner.field or "", field, 1), field=field, value=inner.value
        )
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        message = f"{field} is not a known crawl option (got {value!r})"
    else:
        message = f"{field}={value!r} is invalid: {first['msg']}"
    return ValidationError(message, field=field, value=value)


# --- Response models: tolerant of fields the server adds later. -------------------------


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


# --- Stream events ----------------------------------------------------------------------

EVENT_TYPES = frozenset({"welcome", "metadata", "result", "progress", "summary", "error"})
"""The event vocabulary shared by every transport. Unknown server types pass through."""


class StreamingResult:
    """One event of a crawl stream, the same on every transport.

    Attributes:
        event_type: ``"welcome"``, ``"metadata"``, ``"result"``, ``"progress"``,
            ``"summary"``, ``"error"`` (or a type the server added later).
        data: the event's JSON object as on the wire; for ``result`` events
            ``data["index"]`` is the position in the caller's URL list.
        timestamp: the server's RFC 3339 timestamp, or ``None`` when the transport
            carries none (NDJSON, SSE).
    """

    __slots__ = ("event_type", "data", "timestamp", "_result")

    def __init__(self, event_type: str, data: dict[str, Any], timestamp: str | None = None) -> None:
        self.event_type = event_type
        self.data = data
        self.timestamp = timestamp
        self._result: CrawlResult | None = None

    @property
    def index(self) -> int | None:
        """The URL's position in the caller's list for a ``result`` event, else None."""
        if self.event_type != "result":
            return None
        return self.data.get("index")

    @property
    def result(self) -> CrawlResult | None:
        """The typed :class:`CrawlResult` of a ``result`` event (built on first use), else None."""
        if self.event_type != "result":
            return None
        if self._result is None:
            self._result = CrawlResult.model_validate(self.data.get("result") or {})
        return self._result

    @property
    def progress(self) -> dict[str, Any] | None:
        """``data["progress"]`` of a result event, or ``data`` of a progress event, else None."""
        if self.event_type == "result":
            return self.data.get("progress")
        if self.event_type == "progress":
            return self.data
        return None

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain dict (``event_type``, ``data``, ``timestamp``)."""
        return {"event_type": self.event_type, "data": self.data, "timestamp": self.timestamp}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamingResult):
            return NotImplemented
        return (self.event_type, self.data, self.timestamp) == (
            other.event_type,
            other.data,
            other.timestamp,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable data: not hashable

    def __repr__(self) -> str:
        if self.event_type == "result":
            url = (self.data.get("result") or {}).get("url")
            return f"StreamingResult(result, index={self.data.get('index')}, url={url!r})"
        return f"StreamingResult({self.event_type}, data={self.data!r})"
