"""The bundled demo site, served under ``/demo/`` by the same process.

Pages are generated at import time from a few word lists and a fixed random seed, so the
site is varied but identical on every run, and the package carries no bulky files:

- ``/demo/`` an index page linking every other page;
- ``/demo/articles/<slug>.html`` 30 articles with headings, paragraphs, lists and links
  (a few are deliberately thin, so every gate decision shows up);
- ``/demo/redirect`` a 302 to the first article;
- ``/demo/missing`` a 404 page;
- ``/demo/slow`` an article that answers after ``ServerConfig.demo_slow_delay`` seconds;
- ``/demo/notes.txt`` plain text, ``/demo/report.pdf`` a small real PDF.

The server crawls the site under the reserved host :data:`DEMO_HOST`
(``http://demo.riptide.test/demo/...``, RFC 2606 ``.test``), which it resolves internally:
no DNS, no socket, and no dependence on the port it listens on. That name passes the
real server's private-address and blocked-pattern checks (docs/protocol.md §6.1), which refuse
``127.0.0.1``. Browsers see the same pages at ``http://HOST:PORT/demo/``.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass

_TOPICS = [
    "tide pools", "lighthouses", "harbour cranes", "sea kayaking", "coral reefs", "storm surges",
    "salt marshes", "ferry timetables", "deep sea vents", "kelp forests", "river deltas",
    "coastal erosion", "sailing knots", "whale songs", "shipwreck diving", "fishing villages",
    "tidal power", "sand dunes", "marine radio", "sea glass", "oyster farming", "ocean currents",
    "pier architecture", "beach cleanups", "navigation stars", "harbour seals", "rip currents",
    "floating markets", "canal locks", "island ferries",
]
_NOUNS = ("current", "harbour", "keeper", "tide", "channel", "signal", "vessel", "shore", "chart",
          "crew", "beacon", "reef", "wave", "pilot", "dock", "sailor", "season", "map", "island", "wind")
_VERBS = ("shapes", "guides", "follows", "reveals", "protects", "crosses", "measures", "changes",
          "supports", "outlasts", "records", "warns")
_ADJS = ("quiet", "northern", "shallow", "ancient", "busy", "narrow", "bright", "restless", "coastal",
         "sheltered", "distant", "seasonal")
_AUTHORS = ("Mara Quill", "Tomas Reed", "Ines Harbour", "Olu Adeyemi", "Kai Lindqvist")


@dataclass(frozen=True)
class DemoPage:
    """One generated page: its path under the site root, content type and body."""

    path: str
    content_type: str
    body: bytes
    status: int = 200


def _slug(topic: str) -> str:
    return topic.replace(" ", "-")


def _sentence(rng: random.Random, topic: str) -> str:
    n1, n2 = rng.choice(_NOUNS), rng.choice(_NOUNS)
    forms = [
        f"The {rng.choice(_ADJS)} {n1} {rng.choice(_VERBS)} the {n2} of {topic}.",
        f"Every {n1} near the {rng.choice(_ADJS)} {n2} {rng.choice(_VERBS)} what we know about {topic}.",
        f"Local guides say the {n1} {rng.choice(_VERBS)} the {rng.choice(_ADJS)} {n2} each {rng.choice(_NOUNS)}.",
        f"In {topic}, a {rng.choice(_ADJS)} {n1} often {rng.choice(_VERBS)} a {n2}.",
    ]
    return rng.choice(forms)


def _paragraph(rng: random.Random, topic: str, sentences: int) -> str:
    return " ".join(_sentence(rng, topic) for _ in range(sentences))


def _layout(title: str, body: str, *, description: str = "", author: str = "", date: str = "") -> bytes:
    meta = ""
    if description:
        meta += f'<meta name="description" content="{html.escape(description)}">\n'
    if author:
        meta += f'<meta name="author" content="{html.escape(author)}">\n'
    if date:
        meta += f'<meta property="article:published_time" content="{date}">\n'
    page = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)} | Tidewater Notes</title>
<meta property="og:site_name" content="Tidewater Notes">
{meta}</head>
<body>
<header><nav><a href="/demo/">Home</a> | <a href="/demo/notes.txt">Notes</a> | <a href="/demo/report.pdf">Report</a></nav></header>
<main>
{body}
</main>
<footer><p>Tidewater Notes, a demo site bundled with riptide_sync.</p></footer>
</body></html>
"""
    return page.encode()


def _article(index: int, topic: str) -> DemoPage:
    rng = random.Random(1000 + index)
    title = topic.title()
    # Every seventh article is thin (one short paragraph), so low-quality gates show up.
    thin = index % 7 == 3
    others = [t for t in _TOPICS if t != topic]
    related = rng.sample(others, 3)
    parts = [f"<article>\n<h1>{html.escape(title)}</h1>"]
    parts.append(f"<p>{_paragraph(rng, topic, 2 if thin else 5)}</p>")
    if not thin:
        for heading in rng.sample(["History", "How it works", "What to look for", "Safety",
                                   "Further reading", "Seasons", "People"], 3):
            parts.append(f"<h2>{heading}</h2>")
            for _ in range(rng.randint(1, 3)):
                parts.append(f"<p>{_paragraph(rng, topic, rng.randint(3, 6))}</p>")
        items = "".join(f"<li>{_sentence(rng, topic)}</li>" for _ in range(3))
        parts.append(f"<ul>{items}</ul>")
    links = " ".join(f'<a href="/demo/articles/{_slug(t)}.html">{html.escape(t.title())}</a>' for t in related)
    parts.append(f"<p>Related: {links}. Back to the <a href=\"/demo/\">index</a>.</p>\n</article>")
    date = f"2025-{(index % 12) + 1:02d}-{(index % 27) + 1:02d}"
    body = _layout(title, "\n".join(parts), description=f"Field notes about {topic}.",
                   author=_AUTHORS[index % len(_AUTHORS)], date=date)
    return DemoPage(f"articles/{_slug(topic)}.html", "text/html", body)


def _index() -> DemoPage:
    items = "\n".join(f'<li><a href="/demo/articles/{_slug(t)}.html">{html.escape(t.title())}</a></li>'
                      for t in _TOPICS)
    extra = ('<li><a href="/demo/redirect">A moved page</a></li><li><a href="/demo/missing">A missing page'
             '</a></li><li><a href="/demo/slow">A slow page</a></li>')
    body = f"<h1>Tidewater Notes</h1>\n<p>All articles on this site.</p>\n<ul>\n{items}\n{extra}\n</ul>"
    return DemoPage("", "text/html", _layout("Index", body, description="Index of all demo articles."))


def _notes() -> DemoPage:
    rng = random.Random(7)
    lines = ["Tidewater Notes: field log", ""]
    lines += [f"- {_sentence(rng, rng.choice(_TOPICS))}" for _ in range(12)]
    return DemoPage("notes.txt", "text/plain", ("\n".join(lines) + "\n").encode())


def _pdf() -> DemoPage:
    """A minimal, valid one-page PDF whose text the extractor can read back."""
    lines = ["Tidewater Notes annual report", "Visitors counted on the pier rose again this year.",
             "The lighthouse keeper logged forty storm nights."]
    stream = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({t}) Tj 0 -16 Td" for t in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = "%PDF-1.4\n", []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{obj}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return DemoPage("report.pdf", "application/pdf", out.encode("latin-1"))


def _missing() -> DemoPage:
    body = "<h1>Page not found</h1>\n<p>This page has drifted out to sea. Try the <a href=\"/demo/\">index</a>.</p>"
    return DemoPage("missing", "text/html", _layout("Not found", body), status=404)


def _build() -> dict[str, DemoPage]:
    pages = [_index(), *(_article(i, t) for i, t in enumerate(_TOPICS)), _notes(), _pdf(), _missing()]
    slow = _article(99, "slow tides")
    pages.append(DemoPage("slow", slow.content_type, slow.body))
    return {p.path: p for p in pages}


PAGES: dict[str, DemoPage] = _build()
"""Generated pages by path under ``/demo/`` (the index is ``""``)."""

REDIRECT_PATH = "redirect"
"""``/demo/redirect`` answers 302 to :data:`REDIRECT_TARGET`."""
REDIRECT_TARGET = f"articles/{_slug(_TOPICS[0])}.html"

SLOW_PATH = "slow"
"""``/demo/slow`` answers after ``ServerConfig.demo_slow_delay`` seconds."""


DEMO_HOST = "demo.riptide.test"
"""The reserved host name the local server resolves internally to the demo site."""

DEMO_ORIGIN = f"http://{DEMO_HOST}"
"""Scheme and host of every crawlable demo URL."""


def page_url(path: str = "") -> str:
    """The crawlable URL of one demo page, e.g. ``page_url("missing")``."""
    return f"{DEMO_ORIGIN}/demo/{path}"


def demo_urls(base_url: str | None = None) -> list[str]:
    """Return the crawlable URL of every demo page, under :data:`DEMO_ORIGIN`.

    The list holds the index, the 30 articles, the redirect, the 404, the slow page, the
    text file and the PDF: 36 URLs, always in this order. They do not depend on where the
    server listens: any local server (``serve`` on any port, ``crawl --embedded``)
    crawls them.

    Args:
        base_url: ignored; accepted so that callers written when the URLs named the
            server's own address keep working.
    """
    paths = ["", *(f"articles/{_slug(t)}.html" for t in _TOPICS), REDIRECT_PATH, "missing", SLOW_PATH,
             "notes.txt", "report.pdf"]
    return [page_url(p) for p in paths]


def article_urls(base_url: str | None = None) -> list[str]:
    """Return only the 30 article URLs (fast, all 200, all HTML); ``base_url`` is ignored."""
    return [page_url(f"articles/{_slug(t)}.html") for t in _TOPICS]


def lookup(path: str) -> tuple[int, str, bytes, str | None]:
    """Answer a GET of ``/demo/<path>``: ``(status, content type, body, redirect target)``.

    The redirect target is a path under ``/demo/`` (or ``None``); unknown paths get the
    404 page. The slow page's delay is the caller's to apply.
    """
    if path == REDIRECT_PATH:
        return 302, "text/html", b"", REDIRECT_TARGET
    page = PAGES.get(path) or PAGES["missing"]
    return page.status, page.content_type, page.body, None
