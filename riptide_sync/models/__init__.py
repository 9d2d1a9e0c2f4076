"""Models of the RipTide wire schema (docs/protocol.md §5) and the stream event type.

This is the import path (``riptide_sync.models.CrawlOptions``...); the models live in
three modules by job:

- ``_options``: the request models (``CrawlOptions``, ``ChunkingConfig``, their enums,
  ``coerce_options``), strict: an unknown field or a bad type raises
  :class:`~riptide_sync.exceptions.ValidationError` naming it, before anything is sent.
- ``_responses``: the response models (``CrawlResult``, ``CrawlResponse``,
  ``HealthResponse``...), which allow extra fields, so fields the server adds later do not
  break old clients.
- ``_events``: :class:`StreamingResult`, a plain slotted class, not a pydantic model: one
  is built per message on the hot path, and typed access (``event.result``) is computed
  lazily.

Pydantic evaluates field annotations at runtime, so fields spell ``Optional[X]`` and
``Union[...]``: Python 3.9 has no ``X | Y`` at runtime, even with ``from __future__``.
"""

from __future__ import annotations

from ._events import EVENT_TYPES, StreamingResult
from ._options import (
    CacheMode,
    ChunkingConfig,
    CrawlOptions,
    OutputFormat,
    RenderMode,
    TopicConfig,
    coerce_options,
)
from ._responses import (
    CrawlResponse,
    CrawlResult,
    CrawlStatistics,
    Document,
    ErrorInfo,
    ExtractedDoc,
    GateDecisions,
    HealthResponse,
    ParserMetadata,
    ServiceHealth,
)

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
