"""Validation of what callers pass in, done before any network I/O."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from ..exceptions import ConfigError, ValidationError

__all__ = ["validate_urls", "check_each_url", "validate_base_url", "websocket_url"]

MAX_URL_BYTES = 2048
"""The server's per-URL length limit (docs/protocol.md §6.1 rule 3)."""

# Whitespace or a C0 control character. For str patterns ``\s`` is exactly the set of
# ``str.isspace()`` (both are Py_UNICODE_ISSPACE): one C-level scan per URL.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")

# The common shape, accepted without urlsplit (a hot path: 100,000 URLs took 1.1 s):
# lower-case http(s), a plain host name or IPv4 address, an optional port of 1-5 digits
# (range-checked below), then path/query/fragment. Anything else (userinfo, IPv6,
# upper-case scheme, odd characters in the host) takes the full check, so the answers
# are the same as urlsplit's.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9._~-]+(?::(\d{1,5}))?(?:[/?#].*)?", re.DOTALL)

# The same common shape for a whole list at once, in C-level passes over the URLs joined
# by " " (which no valid URL holds), instead of a Python-level loop (20,000 URLs: 16 ms):
# ASCII only, so characters are bytes; no byte up to 0x20 but the separators, so no
# whitespace or control character (and no empty URL past the first check); every URL's
# start (after a separator) is scheme, host and an optional port 0-65535 spelled out,
# followed by a path/query/fragment delimiter or the URL's end; lengths apart.
# Only the starts are matched: an earlier single match of the whole joined list
# ("(?:url\n)*") kept a backtracking frame per URL in the regex engine, 13 MB for 20,000
# URLs (5 ms warm; 10-14 ms as a fresh process's first long list, page faults, up to 60 ms
# on a loaded machine), before the first request.
# A list these checks do not accept takes the loop, which names the first bad URL; so they
# may only accept what url_problem() accepts (a property test checks).
_PORT = r"(?:\d{1,4}|[0-5]\d{4}|6[0-4]\d{3}|65[0-4]\d\d|655[0-2]\d|6553[0-5])"
_PLAIN_START = rf"https?://[A-Za-z0-9._~-]+(?=[/?# ]|\Z|:{_PORT}(?:[/?# ]|\Z))"
_FIRST_PLAIN = re.compile(_PLAIN_START)
_NEXT_NOT_PLAIN = re.compile(rf" (?!{_PLAIN_START})")  # a separator before a URL that is not
_SPACE_AND_CONTROL_BYTES = bytes(range(0x21))
_SITE = re.compile(rf"https?://[A-Za-z0-9._~-]+(?::{_PORT})?[/?#]")  # a site and a delimiter


def validate_urls(urls: Any) -> list[str]:
    """Check a caller's URL list and return it as a new list.

    Args:
        urls: a list or tuple of absolute http(s) URLs.

    Returns:
        The URLs as a list, unchanged and in order (duplicates are kept: the server crawls
        each copy, docs/protocol.md §6.1).

    Raises:
        ValidationError: ``urls`` is a bare string, not a list or tuple, empty, or holds a
            value that is not an absolute http(s) URL of at most 2048 bytes. The message
            names the value and its position.
    """
    if isinstance(urls, (str, bytes)):
        raise ValidationError(
            f"urls must be a list of URLs, got a single string {urls!r}: pass a list, "
            f"e.g. [{urls!r}]",
            field="urls",
            value=urls,
        )
    if not isinstance(urls, (list, tuple)):
        raise ValidationError(
            f"urls must be a list or tuple of URLs, not {type(urls).__name__}: {urls!r}",
            field="urls",
            value=urls,
        )
    if not urls:
        raise ValidationError("urls is empty: pass at least one URL", field="urls", value=urls)
    check_each_url(urls)
    return list(urls)


def check_each_url(urls: Sequence[Any], positions: Iterable[int] | None = None) -> None:
    """Check every URL with :func:`url_problem`, naming the first bad one by its position.

    Args:
        urls: the URLs.
        positions: the position to name for each URL (a partition's global indices, say);
            None: 0, 1, 2, ...

    Raises:
        ValidationError: ``urls[position] = value is not a valid URL: why``.
    """
    if _all_plain(urls):  # the common case, without a Python-level step per URL
        return
    for position, url in zip(range(len(urls)) if positions is None else positions, urls):
        problem = url_problem(url)
        if problem:
            raise ValidationError(
                f"urls[{position}] = {url!r} is not a valid URL: {problem}",
                field=f"urls[{position}]",
                value=url,
            )


def _all_plain(urls: Sequence[Any]) -> bool:
    """True when every URL has the common shape (see ``_PLAIN_START``); False says nothing.

    About 0.15 us per URL (20,000 URLs: ~3 ms; less for a list from one site), and three
    copies of the joined text in memory at most, whatever the length.
    """
    try:
        joined = " ".join(urls)
    except TypeError:  # a value that is not a string: the loop names it
        return False
    if not joined.isascii():
        return False
    raw = joined.encode("ascii")
    # Deleting every byte up to 0x20 removes exactly the len(urls) - 1 separators, or the
    # URLs hold a space or a control character.
    if len(raw) - len(raw.translate(None, _SPACE_AND_CONTROL_BYTES)) != len(urls) - 1:
        return False
    if len(joined) > MAX_URL_BYTES and max(map(len, urls)) > MAX_URL_BYTES:
        return False
    return _one_site(urls) or (_FIRST_PLAIN.match(joined) is not None
                               and _NEXT_NOT_PLAIN.search(joined) is None)


def _one_site(urls: Sequence[str]) -> bool:
    """True when every URL starts with the first one's ``scheme://host[:port]`` and a
    path, query or fragment delimiter (a list from one site: a sitemap, a benchmark).

    Then no URL's start needs a match of its own (the regex search is ~60% of the list
    check): in string order every URL lies between the smallest and the largest, so it
    shares every prefix those two share. ``min()`` and ``max()`` are C-level compares, tried
    only when the last URL shares the first one's site.
    """
    site = _SITE.match(urls[0])
    if site is None:
        return False
    prefix = site.group()
    return (urls[-1].startswith(prefix) and min(urls).startswith(prefix)
            and max(urls).startswith(prefix))


def url_problem(url: Any) -> str | None:
    """Say what is wrong with one URL, or return None when it is acceptable."""
    if not isinstance(url, str):
        return f"expected a string, got {type(url).__name__}"
    if not url or url != url.strip():
        return "expected an absolute http(s) URL without surrounding spaces"
    if len(url.encode("utf-8")) > MAX_URL_BYTES:
        return f"longer than {MAX_URL_BYTES} bytes"
    if _SPACE_OR_CONTROL.search(url):
        return "contains whitespace or control characters"
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None and (plain.group(1) is None or int(plain.group(1)) <= 65535):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"cannot be parsed ({exc})"
    if parts.scheme not in ("http", "https"):
        shown = parts.scheme or "none"
        return f"scheme must be http or https, got {shown}"
    if not parts.hostname:
        return "has no host"
    return None


def validate_base_url(base_url: Any) -> str:
    """Check the client's ``base_url`` and return it without a trailing slash.

    Raises:
        ConfigError: not a string, not http(s), no host, or it carries a query or fragment.
    """
    if not isinstance(base_url, str):
        raise ConfigError(f"base_url must be a string such as 'http://localhost:8080', got {base_url!r}")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018
    except ValueError as exc:
        raise ConfigError(f"base_url {base_url!r} cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base_url must be an absolute http(s) URL such as 'http://localhost:8080', "
            f"got {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"base_url must not carry a query or fragment, got {base_url!r}")
    return base_url.rstrip("/")


def websocket_url(base_url: str, path: str = "/crawl/ws") -> str:
    """Derive the WebSocket URL from an http(s) base URL, keeping any path prefix.

    ``http://h:8080`` -> ``ws://h:8080/crawl/ws``;
    ``https://h/riptide/`` -> ``wss://h/riptide/crawl/ws``.
    """
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    prefix = parts.path.rstrip("/")
    return urlunsplit((scheme, parts.netloc, prefix + path, "", ""))
