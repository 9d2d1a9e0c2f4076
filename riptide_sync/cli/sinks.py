"""Where ``crawl`` writes each result as it arrives: JSON Lines (``--output``) or one
markdown file per page (``--markdown-dir``). Both are :class:`Sink`\\ s; the display is
apart (:mod:`riptide_sync.cli.display`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import IO, Any, Protocol, TextIO
from urllib.parse import urlsplit

from .._checkpoint import Checkpoint

__all__ = ["JsonLinesSink", "MarkdownSink", "Sink", "jsonl_line", "markdown_file_name", "skip_reason"]


class Sink(Protocol):
    """What the crawl hands each result to."""

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> str | None:
        """Keep one result (``result`` as the wire sent it); return a line to tell the user
        (a page skipped, a file overwritten), or None."""

    def close(self) -> None:
        """Release the file; called once, also after an error or Ctrl-C."""

    def describe(self) -> str:
        """What was written, for the last line: ``"12 written to out.jsonl"``."""


def jsonl_line(index: int, url: str, result: dict[str, Any]) -> str:
    """One ``--output`` line, newline included: ``{"index", "url", "result"}``."""
    return json.dumps({"index": index, "url": url, "result": result}, ensure_ascii=False) + "\n"


class JsonLinesSink:
    """``--output``: one JSON object per line, ``{"index", "url", "result"}``, flushed as it arrives.

    When the file is also the checkpoint (``--resume`` without ``--checkpoint``), the SDK
    appends each result to it before yielding it, so this sink writes nothing itself and
    counts the file's lines at the end: one writer, and no line twice.

    Args:
        path: the file, or ``-`` for ``stdout``.
        stdout: standard output.
        urls: the URL list (to count the file's lines for it).
        append: keep the file's lines and add to them (``--resume``), else truncate.
        recorded_by_sdk: the file is the stream's checkpoint: do not write it here.
    """

    def __init__(self, path: str, stdout: TextIO, urls: list[str], *, append: bool = False,
                 recorded_by_sdk: bool = False) -> None:
        self.path = path
        self.label = "standard output" if path == "-" else path
        self._urls = urls
        self._recorded_by_sdk = recorded_by_sdk
        self._before = len(Checkpoint(path, urls).load()) if append and path != "-" else 0
        self._file: IO[str] | None = None
        if path == "-":
            self._file = stdout
        elif not recorded_by_sdk:
            self._file = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        elif not append:
            open(path, "w", encoding="utf-8").close()  # the SDK appends: start it empty
        self.written = 0

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> str | None:
        if self._file is not None:
            self._file.write(jsonl_line(index, url, result))
            self._file.flush()
        self.written += 1
        return None

    def close(self) -> None:
        if self._file is not None and self.path != "-":
            self._file.close()
        if self._recorded_by_sdk:  # exact, even when Ctrl-C fell between recording and yielding
            self.written = len(Checkpoint(self.path, self._urls).load()) - self._before

    def describe(self) -> str:
        kept = f" (after the {self._before} it held)" if self._before else ""
        return f"{self.written} written to {self.label}{kept}"


class MarkdownSink:
    """``--markdown-dir``: one ``.md`` file per successful page (``CrawlResult.ok`` and a
    document), the title as its heading, then the source URL and the page's markdown.

    Files are named by URL (:func:`markdown_file_name`), so a rerun rewrites the same
    files; each file overwritten and each page skipped is said, with the reason.
    """

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.written = 0
        self.overwritten = 0
        self.skipped = 0
        self._mine: set[str] = set()  # files written by this run

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> str | None:
        """Write the page's file; return what to tell the user (a skip, an overwrite) or None."""
        document = result.get("document") or {}
        if not ok or not document:
            self.skipped += 1
            return f"no markdown for {url}: {skip_reason(result, ok)}"
        title = " ".join((document.get("title") or "").split()) or url
        body = (document.get("markdown") or document.get("text") or "").strip()
        heading = f"# {title}"
        first_line, _, rest = body.partition("\n")
        if first_line.strip() == heading:  # trafilatura's markdown often opens with the title
            body = rest.strip()
        parts = [heading, "", f"Source: <{url}>", "", body, ""]
        name = markdown_file_name(url)
        path = os.path.join(self.directory, name)
        note = None
        if name in self._mine:
            note = f"overwrote {path}: {url} is listed more than once"
        elif os.path.exists(path):
            note = f"overwrote {path} (from an earlier run)"
        if note is not None:
            self.overwritten += 1
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n".join(parts))
        self._mine.add(name)
        self.written += 1
        return note

    def close(self) -> None:
        pass

    def describe(self) -> str:
        extra = [f"{self.overwritten} overwritten"] if self.overwritten else []
        extra += [f"{self.skipped} skipped"] if self.skipped else []
        more = f" ({', '.join(extra)})" if extra else ""
        return f"{self.written} markdown file(s) written to {self.directory}{more}"


def skip_reason(result: dict[str, Any], ok: bool) -> str:
    """Why a result has no markdown file: its error, its HTTP status, or no document."""
    error = result.get("error")
    if isinstance(error, dict):
        return f"failed ({error.get('error_type')}: {' '.join(str(error.get('message')).split())})"
    status = result.get("status")
    if not ok:
        return f"failed (HTTP {status})"
    return f"the server sent no document (HTTP {status})"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def markdown_file_name(url: str, max_length: int = 100) -> str:
    """A safe file name for ``url``, the same on every run: host, port and path as a slug,
    then a short hash of the whole URL (two URLs with the same slug differ by it), e.g.
    ``example-com-docs-intro-html-1a2b3c4d.md``."""
    parts = urlsplit(url)
    raw = f"{parts.hostname or 'page'}-{parts.port or ''}-{parts.path}-{parts.query}"
    slug = _UNSAFE.sub("-", raw.replace(".", "-")).strip("-.")
    slug = re.sub(r"-{2,}", "-", slug)[:max_length].rstrip("-.") or "page"
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}.md"


