"""Turn a fetched page into an ExtractedDoc (docs/protocol.md §5.4) and a quality score.

trafilatura finds the main content, its markdown and metadata; lxml supplies what
trafilatura does not return (all links, images, the ``lang`` attribute). Runs in a worker
thread: everything here is synchronous and CPU-bound.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from trafilatura.settings import Document
from trafilatura.xml import xmltotxt

GATE_HI_THRESHOLD = 0.7
"""Quality at or above which the gate chooses ``raw`` (GATE_HI_THRESHOLD, §4)."""
GATE_LO_THRESHOLD = 0.3
"""Quality at or above which the gate chooses ``probes_first``; below: ``headless``."""


def gate_decision(quality: float) -> str:
    """Return the gate outcome for a 0-1 quality score (§5.3)."""
    if quality >= GATE_HI_THRESHOLD:
        return "raw"
    if quality >= GATE_LO_THRESHOLD:
        return "probes_first"
    return "headless"


def _extraction_path(gate: str) -> str:
    return {"raw": "fast", "probes_first": "probes_first"}.get(gate, "headless")


def empty_document(url: str) -> dict[str, Any]:
    """Return an ExtractedDoc with all 17 fields, in struct order, holding nothing."""
    return {
        "url": url, "title": None, "text": "", "quality_score": None, "links": [],
        "byline": None, "published_iso": None, "markdown": None, "media": [],
        "language": None, "reading_time": None, "word_count": None, "categories": [],
        "site_name": None, "description": None, "html": None, "parser_metadata": None,
    }


def score_quality(text: str, title: str | None, markdown: str | None, description: str | None) -> float:
    """Score extracted content from 0.0 to 1.0: mostly length, plus structure."""
    score = 0.5 * min(len(text) / 2000.0, 1.0)
    if title:
        score += 0.15
    if description:
        score += 0.1
    blocks = [b for b in (markdown or text).split("\n\n") if b.strip()]
    if len(blocks) >= 3:
        score += 0.15
    if markdown and re.search(r"^#{1,6} ", markdown, re.MULTILINE):
        score += 0.1
    return round(min(score, 1.0), 4)


def _finish(doc: dict[str, Any], quality: float, parser: str, started: float,
            fallback: bool = False, gate: str | None = None) -> tuple[dict[str, Any], float, str]:
    gate = gate or gate_decision(quality)
    words = len(doc["text"].split())
    doc["word_count"] = words
    doc["reading_time"] = max(1, math.ceil(words / 200)) if words else 0
    doc["quality_score"] = int(round(quality * 100))
    doc["parser_metadata"] = {
        "parser_used": parser,
        "confidence_score": float(quality),
        "fallback_occurred": fallback,
        "parse_time_ms": int((time.perf_counter() - started) * 1000),
        "extraction_path": _extraction_path(gate),
        "primary_error": "trafilatura found no main content" if fallback else None,
    }
    return doc, quality, gate


def _absolute_links(tree: Any, base: str, xpath: str) -> list[str]:
    seen: dict[str, None] = {}
    for raw in tree.xpath(xpath):
        link = urljoin(base, str(raw).strip())
        if urlsplit(link).scheme in ("http", "https"):
            seen.setdefault(link.split("#", 1)[0] or link, None)
    return list(seen)


def extract_html(url: str, final_url: str, html: str) -> tuple[dict[str, Any], float, str]:
    """Extract an HTML page.

    Args:
        url: the URL as requested (becomes ``document.url``).
        final_url: the URL after redirects, the base for relative links.
        html: the decoded page.

    Returns:
        ``(document, quality 0-1, gate_decision)``.
    """
    started = time.perf_counter()
    doc = empty_document(url)
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        tree = None
    if tree is not None:
        doc["links"] = _absolute_links(tree, final_url, "//a/@href")
        doc["media"] = _absolute_links(tree, final_url, "//img/@src")
        lang = tree.xpath("string(/html/@lang)")
        doc["language"] = lang.split("-")[0].lower() or None if lang else None
    extracted = trafilatura.bare_extraction(
        html, url=final_url, with_metadata=True, include_formatting=True,
        include_links=False, output_format="python")
    # A dict only with as_dict=True, which we do not pass: narrow to the Document.
    result = extracted if isinstance(extracted, Document) else None
    if result is not None and result.body is not None:
        markdown = (xmltotxt(result.body, include_formatting=True) or "").strip()
        text = (xmltotxt(result.body, include_formatting=False) or "").strip()
    else:
        markdown, text = "", ""
    fallback = not text
    if result is not None:
        doc["title"] = result.title or None
        doc["byline"] = result.author or None
        doc["published_iso"] = result.date or None
        doc["description"] = result.description or None
        doc["site_name"] = result.sitename or None
        doc["categories"] = list(result.categories or []) + list(result.tags or [])
        doc["language"] = doc["language"] or result.language or None
    if fallback and tree is not None:
        # Index pages and very short pages have no "main content" for trafilatura: fall
        # back to the visible text of <body>, one line per non-empty text block.
        body = tree.find("body")
        node = body if body is not None else tree
        lines = [line.strip() for line in node.text_content().splitlines()]
        text = "\n".join(line for line in lines if line)
        markdown = text
        doc["title"] = doc["title"] or (tree.findtext(".//title") or "").strip() or None
    doc["text"] = text
    doc["markdown"] = markdown or None
    quality = score_quality(text, doc["title"], markdown, doc["description"])
    return _finish(doc, quality, "fallback" if fallback else "native", started, fallback)


def extract_text(url: str, body: str) -> tuple[dict[str, Any], float, str]:
    """Extract a ``text/*`` page that is not HTML: the text is the page itself."""
    started = time.perf_counter()
    doc = empty_document(url)
    text = body.strip()
    doc["text"] = text
    doc["markdown"] = text
    first = text.splitlines()[0].strip() if text else ""
    doc["title"] = first[:200] or None
    quality = score_quality(text, doc["title"], text, None)
    return _finish(doc, quality, "native", started)


_PDF_TEXT = re.compile(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj")


def extract_pdf(url: str, body: bytes) -> tuple[dict[str, Any], float, str]:
    """Extract a PDF the simple way: the strings shown by ``Tj`` operators.

    The gate decision is ``pdf`` with quality 0.95, as on the real server (§5.3).
    """
    started = time.perf_counter()
    doc = empty_document(url)
    lines = [m.group(1).replace(rb"\(", b"(").replace(rb"\)", b")").decode("latin-1")
             for m in _PDF_TEXT.finditer(body)]
    doc["text"] = "\n".join(lines)
    doc["markdown"] = "\n\n".join(lines) or None
    doc["title"] = lines[0] if lines else None
    return _finish(doc, 0.95, "native", started, gate="pdf")


def raw_document(url: str, html: str) -> tuple[dict[str, Any], float, str]:
    """``skip_extraction``: the raw HTML in ``document.html``, everything else empty (§5.2)."""
    doc = empty_document(url)
    doc["html"] = html
    return doc, 0.5, gate_decision(0.5)
