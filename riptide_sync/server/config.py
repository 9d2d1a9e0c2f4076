"""Configuration of the local server: :class:`ServerConfig` and :class:`Faults`.

Both are plain frozen dataclasses, so a test can build one, ``dataclasses.replace()`` it,
and hand it to :func:`riptide_sync.server.serve_in_thread`.
"""

from __future__ import annotations

import dataclasses
import ssl
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Faults:
    """Fault scenarios for testing clients. Every fault is off by default.

    "Per transport" below means the WebSocket (``ws``), NDJSON (``ndjson``) and SSE
    (``sse``) surfaces each keep their own "first" counter: the first WS connection, the
    first NDJSON request and the first SSE request are each "first". Results are counted
    per connection (WS, across all crawls on the socket) or per request (NDJSON, SSE).
    Batch (``/crawl``) is only affected by ``reject_first`` and ``send_delay`` does not
    apply to it.
    """

    drop_after: int | None = None
    """Abort the TCP connection, without a Close frame or a final chunk, right after the
    Nth result has been sent. First connection/request of each transport only."""

    drop_every: int | None = None
    """Like ``drop_after`` but on every connection/request: each one is aborted after it
    has sent N results."""

    drop_results_for: frozenset[str] = frozenset()
    """URLs whose result message is silently not sent, the first time each URL is crawled
    on this server (any transport). The summary still counts them, as when the real
    server drops a message (docs/protocol.md §1.9)."""

    drop_summary_first: int = 0
    """Silently skip the summary (WS ``summary``, NDJSON summary line, SSE ``complete``)
    of the first K crawls on this server, counted across all streaming transports."""

    freeze_after: int | None = None
    """After the Nth result, stop sending and stop reading (no pongs, no pings, no
    replies) while keeping the TCP connection open until the client goes away or the
    server shuts down. First connection/request of each transport only."""

    malformed_after: int | None = None
    """Right after the Nth result, send one frame/line/event whose data is not valid JSON,
    then continue normally. Once on every connection/request."""

    reject_first: int = 0
    """Answer the first K crawl requests (batch, NDJSON, SSE POSTs and WS handshakes,
    counted together) with 429, ``Retry-After: <retry_after>`` and the ApiError body."""

    retry_after: int = 1
    """The ``Retry-After`` value, in seconds, sent with ``reject_first`` rejections."""

    cut_ndjson_after: int | None = None
    """End the first NDJSON body after N complete lines (metadata included) plus the
    first half of line N+1. The body ends cleanly (final chunk sent), mid-line and without
    a summary. First NDJSON request only."""

    send_delay: float = 0.0
    """Seconds to wait before each stream message (metadata, result, progress, summary)
    on WS, NDJSON and SSE. 0 means no delay."""

    backpressure_drop: bool = False
    """Apply the drop rules (a) and (b) of docs/protocol.md §1.9 to stream messages on WS and
    SSE (and to NDJSON result lines). Off by default, as the local server has no reason
    to drop; this turns it into a scenario."""

    slow_send_threshold: float = 0.1
    """Seconds above which a send counts as slow for rule (a) of §1.9 (the real server
    uses 100 ms). 0 makes every send slow, which lets tests trigger dropping quickly."""

    @classmethod
    def from_strings(cls, items: list[str]) -> Faults:
        """Build faults from ``NAME=VALUE`` strings (the CLI's ``--fault``).

        ``drop_results_for`` takes comma-separated URLs; ``backpressure_drop`` takes
        1/0/true/false.

        Raises:
            ValueError: an unknown name or a value of the wrong type.
        """
        kwargs: dict[str, object] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                raise ValueError(f"unknown fault {item!r}; known: {', '.join(sorted(types))}")
            kind = str(types[name])
            if name == "drop_results_for":
                kwargs[name] = frozenset(u for u in value.split(",") if u)
            elif name == "backpressure_drop":
                kwargs[name] = value.strip().lower() in {"1", "true", "yes", "on"}
            elif "float" in kind:
                kwargs[name] = float(value)
            else:
                kwargs[name] = int(value)
        return cls(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server instance. Durations are seconds; ``None`` means "no limit"."""

    host: str = "127.0.0.1"
    """Address to bind. The default is loopback only."""

    port: int = 0
    """Port to bind; 0 picks a free one (see ``RunningServer.port``)."""

    api_keys: tuple[str, ...] = ()
    """Accepted API keys. Empty means auth is off (docs/protocol.md §7.2)."""

    rate_limit: int | None = None
    """Requests allowed per client per ``rate_limit_window`` (§7.3: 100 per 60 s on the
    real server); ``None`` turns rate limiting off."""

    rate_limit_window: float = 60.0
    """Length of the fixed rate-limit window, in seconds."""

    auth_lockout_attempts: int | None = None
    """Failed authentications per client IP within ``auth_lockout_window`` after which the
    IP is blocked for 2^min(failures, 10) seconds, answered 429 even with a valid key
    (§7.2: 10 on the real server). ``None`` (the default) turns the lockout off, so that
    tests of bad keys cannot lock each other out."""

    auth_lockout_window: float = 60.0
    """Window in seconds over which failed authentications are counted."""

    ping_interval: float = 30.0
    """Seconds between WebSocket Ping frames (§1.8); the first goes out after welcome."""

    pong_timeout: Optional[float] = None
    """Lenient option: close a WebSocket (code 1011) whose pong is this many seconds late.
    ``None`` (the default): never, as the real server (§1.8). Only meaningful together
    with ``ping_during_crawl``, since a strict server reads no pong during a crawl."""

    ping_during_crawl: bool = False
    """Lenient option: keep reading the socket (answering client pings, reading pongs) and
    keep sending Pings while a crawl runs. The default is the real server's behaviour
    (§1.8): the crawl holds the send lock and requests are read one at a time, so
    nothing is read and no Ping is sent until the summary."""

    max_urls_per_request: int = 100
    """Rule 2 of §6.1. NDJSON (variant A) allows ``max(1000, this)``."""

    fetch_timeout: float = 15.0
    """Per-URL fetch timeout (headers and body together)."""

    max_page_size: int = 5 * 1024 * 1024
    """Largest page body fetched, in bytes; bigger pages fail."""

    stream_concurrency: int = 64
    """Cap on URLs fetched at once by one stream (the real server has no cap, §1.9 r. 5)."""

    response_timeout: float = 30.0
    """Batch responses slower than this get 408 with an empty body (§0.2)."""

    cache_path: str | None = None
    """SQLite file for the cache; ``None`` keeps the cache in memory."""

    allow_private: Optional[bool] = False
    """Lenient option: skip rules 6 and 7 of §6.1 (blocked patterns, private and loopback
    targets). Off by default, on loopback too, as the real server. Tests that crawl an
    origin of their own on 127.0.0.1 turn it on; the bundled demo site needs no such
    thing, since it lives under the reserved host ``demo.riptide.test`` (see
    :mod:`riptide_sync.server.demo_site`). ``None`` means ``False``."""

    origin_errors_succeed: bool = False
    """Lenient option: a non-2xx origin page (e.g. the demo's 404) is a successful result
    with the origin's status and its extracted document. The default is the real
    server's: a failed result whose error reads ``Fetch failed: HTTP error: 404 Not
    Found`` (§1.6, §2.3)."""

    batch_pipeline: str = "enhanced"
    """Pipeline of batch ``/crawl`` (§4): ``"enhanced"`` (the real default,
    ``ENHANCED_PIPELINE_ENABLE=true``: status 200, ``riptide:v1:enhanced:<url>`` cache
    keys, placeholder documents) or ``"standard"`` (the lenient option: origin status,
    extracted documents, the streams' pipeline)."""

    compression: bool = True
    """gzip (else deflate) every response but SSE and WebSocket upgrades for a client
    whose ``Accept-Encoding`` allows it, as the real server's outer compression layer
    (§0.2, §2.2). ``False`` is the lenient option: nothing is compressed."""

    ssl_context: Optional[ssl.SSLContext] = None
    """Serve HTTPS/WSS with this server-side context (tests build one with trustme);
    ``None`` serves plain HTTP."""

    synthetic_doc_size: int | None = None
    """When set, nothing is fetched: every URL succeeds at once with a document whose
    ``text`` is exactly this many bytes (benchmarks)."""

    sse_keepalive: float = 30.0
    """Seconds without an SSE event before a ``::heartbeat`` comment is sent."""

    demo_slow_delay: float = 1.5
    """Seconds the demo site's slow page takes to answer."""

    faults: Faults = field(default_factory=Faults)
    """Fault scenarios; see :class:`Faults`."""

    def __post_init__(self) -> None:
        if self.batch_pipeline not in ("enhanced", "standard"):
            raise ValueError(f"batch_pipeline must be 'enhanced' or 'standard', got {self.batch_pipeline!r}")

    @property
    def private_allowed(self) -> bool:
        """Whether rules 6 and 7 of §6.1 are skipped (``allow_private``; ``None`` is off)."""
        return bool(self.allow_private)
