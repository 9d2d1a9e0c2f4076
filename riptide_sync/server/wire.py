"""Wire-level helpers: JSON, timestamps, request parsing and validation.

An independent reading of docs/protocol.md §5.1-§5.2 (strict CrawlBody parsing) and §6.1
(crawl request validation). Deliberately shares no code with ``riptide_sync.protocol``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

_UTC = _dt.timezone.utc


def now_rfc3339() -> str:
    """Return the current UTC time as chrono's ``to_rfc3339()`` writes it (``+00:00``).

    chrono keeps nanoseconds and prints the shortest of 0, 3, 6 or 9 fraction digits that
    is exact, so a system clock reading normally shows all 9 (§0.2).
    """
    return rfc3339_ns(time.time_ns())


def rfc3339_ns(epoch_ns: int) -> str:
    """Format a Unix time in nanoseconds as chrono's ``SecondsFormat::AutoSi`` does."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = _dt.datetime.fromtimestamp(seconds, _UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        fraction = ""
    elif nanos % 1_000_000 == 0:
        fraction = f".{nanos // 1_000_000:03d}"
    elif nanos % 1_000 == 0:
        fraction = f".{nanos // 1_000:06d}"
    else:
        fraction = f".{nanos:09d}"
    return f"{base}{fraction}+00:00"


def rfc3339_at(epoch: float) -> str:
    """Return a Unix time (seconds) as an RFC 3339 string, as :func:`rfc3339_ns`."""
    return rfc3339_ns(int(round(epoch * 1_000_000_000)))


def new_id() -> str:
    """Return a fresh UUID v4 string."""
    return str(uuid.uuid4())


def dumps(obj: Any) -> bytes:
    """Serialize in insertion (struct) order, as serde does for Rust structs (§0.2)."""
    return orjson.dumps(obj)


def dumps_sorted(obj: Any) -> bytes:
    """Serialize with every object's keys sorted, as serde_json's ``json!`` does (§0.2)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def ws_envelope(message_type: str, data: dict[str, Any]) -> str:
    """Build one server-to-client WebSocket text frame (§1.2).

    The envelope is a struct (``message_type``, ``data``, ``timestamp`` in that order);
    ``data`` is a ``json!`` value, so its keys, nested ones included, come out sorted.
    """
    return (
        b'{"message_type":' + orjson.dumps(message_type)
        + b',"data":' + dumps_sorted(data)
        + b',"timestamp":"' + now_rfc3339().encode() + b'"}'
    ).decode()


def api_error(kind: str, message: str, status: int, retryable: bool = False) -> dict[str, Any]:
    """Build the REST ApiError body of §5.6."""
    return {"error": {"type": kind, "message": message, "retryable": retryable, "status": status}}


# ---------------------------------------------------------------------------------------
# Strict request parsing (§5.1, §5.2): the equivalent of serde's derive(Deserialize).


class BodyShapeError(ValueError):
    """The JSON is valid but does not deserialize into a CrawlBody (422 / WS silence)."""


_RENDER_MODES = ("Static", "Dynamic", "Adaptive", "Pdf", "Html", "Markdown")
_OUTPUT_FORMATS = ("Document", "NdJson", "Chunked", "Text", "Markdown")
_CHUNKING_MODES = ("topic", "sliding", "fixed", "sentence", "html-aware")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {orjson.dumps(value).decode()}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _invalid(path: str, value: Any, expected: str) -> BodyShapeError:
    return BodyShapeError(f"{path}: invalid type: {_type_name(value)}, expected {expected}")


def _check_uint(path: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(path, value, "u32")
    if value < 0:
        raise BodyShapeError(f"{path}: invalid value: integer `{value}`, expected u32")


def _check_str(path: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _invalid(path, value, "a string")


def _check_bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _invalid(path, value, "a boolean")


def _check_enum(path: str, value: Any, variants: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise _invalid(path, value, "a string")
    if value not in variants:
        names = ", ".join(f"`{v}`" for v in variants)
        raise BodyShapeError(f"{path}: unknown variant `{value}`, expected one of {names}")


# Field name -> (checker, nullable). Non-nullable fields reject null (§5.2).
_OPTION_FIELDS: dict[str, tuple[Any, bool]] = {
    "concurrency": (_check_uint, False),
    "cache_mode": (_check_str, False),
    "dynamic_wait_for": (_check_str, True),
    "scroll_steps": (_check_uint, False),
    "token_chunk_max": (_check_uint, False),
    "token_overlap": (_check_uint, False),
    "render_mode": (lambda p, v: _check_enum(p, v, _RENDER_MODES), False),
    "output_format": (lambda p, v: _check_enum(p, v, _OUTPUT_FORMATS), False),
    "use_spider": (_check_bool, True),
    "spider_max_depth": (_check_uint, True),
    "spider_strategy": (_check_str, True),
    "chunking_config": (lambda p, v: _check_chunking(p, v), True),
    "skip_extraction": (_check_bool, True),
}


def _check_object(path: str, value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise _invalid(path, value, what)


def _check_fields(path: str, obj: dict[str, Any], fields: dict[str, tuple[Any, bool, bool]]) -> None:
    """Check ``obj`` against ``fields``: name -> (checker, nullable, required)."""
    for name, (check, nullable, required) in fields.items():
        if name not in obj:
            if required:
                raise BodyShapeError(f"{path}: missing field `{name}`")
            continue
        value = obj[name]
        if value is None and nullable:
            continue
        check(f"{path}.{name}", value)


def _check_chunking(path: str, value: Any) -> None:
    _check_object(path, value, "struct ChunkingConfig")
    _check_fields(path, value, {
        "chunking_mode": (lambda p, v: _check_enum(p, v, _CHUNKING_MODES), False, True),
        "chunk_size": (_check_uint, False, True),
        "overlap_size": (_check_uint, False, True),
        "min_chunk_size": (_check_uint, False, True),
        "preserve_sentences": (_check_bool, False, False),
        "topic_config": (_check_topic, True, False),
    })


def _check_topic(path: str, value: Any) -> None:
    _check_object(path, value, "struct TopicChunkingConfig")
    _check_fields(path, value, {
        "window_size": (_check_uint, False, True),
        "smoothing_passes": (_check_uint, False, True),
        "topic_chunking": (_check_bool, False, True),
    })


@dataclass(frozen=True)
class CrawlRequest:
    """A CrawlBody that deserialized: the URLs as sent and the options we act on."""

    urls: list[str]
    options: dict[str, Any] | None
    """The ``options`` object as sent (``None`` if missing or null)."""

    @property
    def cache_mode(self) -> str:
        """``options.cache_mode``, default ``read_through`` (§5.2)."""
        mode: str = (self.options or {}).get("cache_mode", "read_through")  # str: parse_crawl_body checked it
        return mode

    @property
    def concurrency(self) -> int:
        """``options.concurrency``, default 16; used by batch only (§4)."""
        concurrency: int = (self.options or {}).get("concurrency", 16)  # int: parse_crawl_body checked it
        return concurrency

    @property
    def skip_extraction(self) -> bool:
        """``options.skip_extraction`` is true: return raw HTML in ``document.html``."""
        return bool((self.options or {}).get("skip_extraction"))


def parse_crawl_body(body: Any) -> CrawlRequest:
    """Deserialize a CrawlBody (§5.1) strictly; unknown fields are ignored.

    Raises:
        BodyShapeError: wrong shape, wrong type, bad enum value or null where not allowed.
    """
    if not isinstance(body, dict):
        raise BodyShapeError(f"invalid type: {_type_name(body)}, expected struct CrawlBody")
    if "urls" not in body:
        raise BodyShapeError("missing field `urls`")
    urls = body["urls"]
    if not isinstance(urls, list):
        raise _invalid("urls", urls, "a sequence")
    for i, url in enumerate(urls):
        if not isinstance(url, str):
            raise _invalid(f"urls[{i}]", url, "a string")
    options = body.get("options")
    if options is not None:
        _check_object("options", options, "struct CrawlOptions")
        for name, (check, nullable) in _OPTION_FIELDS.items():
            if name in options and not (options[name] is None and nullable):
                check(f"options.{name}", options[name])
    return CrawlRequest(urls=list(urls), options=options)


# ---------------------------------------------------------------------------------------
# Validation (§6.1), in the order the real server checks.


@dataclass(frozen=True)
class ValidationFailure(Exception):
    """A §6.1 rule failed: ``kind`` is ``validation_error`` or ``invalid_url``."""

    kind: str
    message: str


_BLOCKED_PATTERNS = ("localhost", "127.0.0.1", "0.0.0.0", "::1", "169.254.", "10.", "172.16.", "192.168.")
_SUSPICIOUS_EXTENSIONS = (".exe", ".bat", ".cmd", ".scr", ".vbs", ".js")
_PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in
                    ("10.0.0.0/8", "172.16.0.0/12", "127.0.0.0/8", "169.254.0.0/16", "192.168.0.0/16"))
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")


_split = functools.lru_cache(maxsize=4096)(urlsplit)
"""urlsplit, memoized: each rule looks at the same few URLs again."""


def _parse_error(url: str) -> str | None:
    """Mimic the Rust ``url`` crate's parse errors for the common cases (rule 4)."""
    try:
        parts = _split(url)
    except ValueError as exc:
        return "invalid IPv6 address" if "IPv6" in str(exc) else str(exc)
    if not parts.scheme or not url[: len(parts.scheme)].isascii():
        return "relative URL without a base"
    if parts.scheme.lower() in ("http", "https", "ws", "wss", "ftp"):
        if not parts.netloc.rpartition("@")[2]:
            return "empty host"
        try:
            parts.port
        except ValueError:
            return "invalid port number"
        host = parts.hostname or ""
        if any(c in host for c in " <>^|%\\"):
            return "invalid domain character"
    return None


def _private_host(url: str) -> str | None:
    """Return the host (as the url crate prints it) when it is a private or local IP."""
    try:
        parts = _split(url)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 4:
        return host if any(ip in net for net in _PRIVATE_V4) else None
    if ip.is_loopback or ip in _LINK_LOCAL_V6:
        return f"[{host}]"
    return None


def validate_crawl_request(urls: list[str], *, max_urls: int, allow_private: bool) -> None:
    """Apply the §6.1 rules in order; return quietly when the request is valid.

    Args:
        urls: the request's URLs, as sent.
        max_urls: rule 2's limit (100 on the real server).
        allow_private: skip rules 6 and 7 (the local server's switch, see ServerConfig).

    Raises:
        ValidationFailure: the first rule that fails, with its exact display message.
    """
    if not urls:
        raise ValidationFailure("validation_error", "Validation error: At least one URL is required")
    if len(urls) > max_urls:
        raise ValidationFailure(
            "validation_error", f"Validation error: Too many URLs: {len(urls)} (maximum: {max_urls})")
    for i, url in enumerate(urls, start=1):
        prefix = f"Invalid URL: {url} - URL {i}"
        failed = f"{prefix} validation failed: "
        size = len(url.encode())
        if size > 2048:
            raise ValidationFailure("invalid_url", f"{failed}URL length {size} exceeds maximum 2048")
        error = _parse_error(url)
        if error is not None:
            raise ValidationFailure("invalid_url", f"{failed}Invalid URL format: {error}")
        scheme = _split(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValidationFailure("invalid_url", f"{failed}Unsupported URL scheme: {scheme}")
        if not allow_private:
            # Rule 6 is a case-sensitive substring match on the whole URL [quirk]: it also
            # rejects e.g. https://example.org/v10.2/.
            for pattern in _BLOCKED_PATTERNS:
                if pattern in url:
                    raise ValidationFailure("invalid_url", f"{failed}URL contains blocked pattern: {pattern}")
            host = _private_host(url)
            if host is not None:
                raise ValidationFailure(
                    "invalid_url", f"{failed}Private or local IP addresses are not allowed: {host}")
        if url.count("%") > 20:
            raise ValidationFailure("invalid_url", f"{prefix} has excessive URL encoding")
        lowered = url.lower()
        if any(ext in lowered for ext in _SUSPICIOUS_EXTENSIONS):
            raise ValidationFailure("invalid_url", f"{prefix} contains suspicious file extension")
