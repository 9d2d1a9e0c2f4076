"""The request models: crawl options as the caller gives them and the server receives them
(docs/protocol.md §5.2), and their enums.

Strict: an unknown field or a bad type raises :class:`~riptide_sync.exceptions.ValidationError`
naming it, before anything is sent. Import them from :mod:`riptide_sync.models`.

Fields spell ``Optional[X]``: pydantic evaluates them at runtime (see
:mod:`riptide_sync.models`).
"""

from __future__ import annotations

import enum
from typing import Any, Mapping, Optional

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from .._config import check_duration
from ..exceptions import ValidationError

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
