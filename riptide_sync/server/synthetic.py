"""Synthetic mode: pre-serialized result templates, so benchmarks measure the client.

Every URL succeeds at once with a document whose ``text`` is exactly ``doc_size`` bytes.
A message is a template compiled once per request, with the few per-message values
(index, counts, URL, timestamp) spliced in as bytes: no dict building, no key sorting and
no JSON encoding of the document per message.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

import orjson

from .extract import empty_document

_WORDS = ("riptide crawler synthetic document text stream socket result summary "
          "metadata progress lorem ipsum dolor sit amet consectetur adipiscing elit").split()
_FIELD = re.compile(rb'"?@@(\w+)@@"?')


def synthetic_text(size: int) -> str:
    """Return deterministic ASCII words totalling exactly ``size`` bytes (JSON-safe)."""
    out: list[str] = []
    length, i = 0, 0
    while length < size:
        word = _WORDS[i % len(_WORDS)]
        out.append(word)
        length += len(word) + 1
        i += 1
    return " ".join(out)[:size].ljust(size, "x")


class Template:
    """Raw JSON bytes with named holes, written ``"@@name@@"`` or ``@@name@@``.

    A hole (with its quotes, if any) is replaced by raw bytes, so a string value must be
    passed with its quotes, e.g. ``orjson.dumps(url)``.
    """

    def __init__(self, raw: bytes) -> None:
        pieces = _FIELD.split(raw)
        self._parts: list[bytes] = pieces[0::2]
        self._names: list[str] = [p.decode() for p in pieces[1::2]]

    def fill(self, values: dict[str, bytes]) -> bytes:
        """Return the message with each hole replaced by ``values[name]``."""
        parts = self._parts
        out = [parts[0]]
        for k, name in enumerate(self._names):
            out.append(values[name])
            out.append(parts[k + 1])
        return b"".join(out)


def synthetic_result(doc_size: int, cache_mode: str) -> dict[str, Any]:
    """Return the CrawlResult template (struct order) with holes ``url`` and ``key``."""
    text = synthetic_text(doc_size)
    document = empty_document("@@url@@")
    words = len(text.split())
    document.update({
        "title": "Synthetic page", "text": text, "quality_score": 90, "language": "en",
        "reading_time": max(1, words // 200), "word_count": words,
        "parser_metadata": {"parser_used": "native", "confidence_score": 0.9,
                            "fallback_occurred": False, "parse_time_ms": 0,
                            "extraction_path": "fast", "primary_error": None},
    })
    return {
        "url": "@@url@@", "status": 200, "from_cache": False, "gate_decision": "raw",
        "quality_score": 0.9, "processing_time_ms": 0, "document": document, "error": None,
        "cache_key": f"riptide:v1:{cache_mode}:@@key@@",
    }


def key_hex(url: str) -> bytes:
    """The hex part of the cache key, as :func:`riptide_sync.server.cache.cache_key`."""
    return hashlib.sha256(url.encode()).hexdigest()[:16].encode()


class SyntheticMessages:
    """Compiled result messages for one crawl request, one template per surface.

    Use :meth:`for_request`: building them costs ~4 ms at 64 KB documents (0.3 ms at 4 KB;
    the text, three ``orjson.dumps`` and three template splits), which each request would
    otherwise pay before its first result.
    """

    @staticmethod
    def for_request(doc_size: int, cache_mode: str, total: int) -> SyntheticMessages:
        """The messages of a request of ``total`` URLs, built once per (size, mode, total):
        the templates are immutable (``fill`` builds a new message), so requests share them."""
        return _messages(doc_size, cache_mode, total)

    def __init__(self, doc_size: int, cache_mode: str, total: int) -> None:
        result = synthetic_result(doc_size, cache_mode)
        # The key's hole would sit inside a string: make the whole value a hole.
        result["cache_key"] = "@@key@@"
        self._key_prefix = f'"riptide:v1:{cache_mode}:'.encode()
        # WS: the envelope is a struct (fixed key order), its data a json! value (sorted).
        data = orjson.dumps({"index": "@@index@@", "progress": {"completed": "@@completed@@",
                                                                "success_rate": 1.0, "total": total},
                             "result": result}, option=orjson.OPT_SORT_KEYS)
        self.ws = Template(b'{"message_type":"result","data":' + data + b',"timestamp":"@@ts@@"}')
        self.ndjson = Template(orjson.dumps({
            "index": "@@index@@", "result": result,
            "progress": {"completed": "@@completed@@", "total": total, "success_rate": 1.0}}) + b"\n")
        self.sse = Template(b"event:result\ndata:" + orjson.dumps({
            "index": "@@index@@", "result": result, "processing_time_ms": "@@elapsed@@"}) + b"\nid:@@index@@\n\n")

    def values(self, index: int, completed: int, url: str) -> dict[str, bytes]:
        """Per-message values common to all surfaces (add ``ts`` / ``elapsed`` as needed)."""
        return {"index": str(index).encode(), "completed": str(completed).encode(),
                "url": orjson.dumps(url), "key": self._key_prefix + key_hex(url) + b'"'}


@functools.lru_cache(maxsize=32)
def _messages(doc_size: int, cache_mode: str, total: int) -> SyntheticMessages:
    return SyntheticMessages(doc_size, cache_mode, total)
