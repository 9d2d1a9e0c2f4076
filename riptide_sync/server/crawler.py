"""The standard pipeline: cache lookup, fetch, extract, gate (PROTOCOL.md §5.3, §2.3).

:class:`Crawler` turns one URL into an :class:`Outcome`; the surfaces (WS, NDJSON, SSE,
batch) turn outcomes into their own CrawlResult shapes with :func:`result_for`.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp

from . import extract
from .cache import MemoryCache, cache_key
from .config import ServerConfig

_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class Outcome:
    """What crawling one URL produced."""

    url: str
    result: dict[str, Any] | None
    """The successful CrawlResult in struct order, or ``None`` on failure."""
    error_text: str | None
    """The server's error text on failure (e.g. ``Operation timed out: ...``)."""
    elapsed_ms: int
    """Time the URL's own task took."""

    @property
    def ok(self) -> bool:
        """Whether the URL succeeded (its result has ``error: null``)."""
        return self.result is not None

    @property
    def from_cache(self) -> bool:
        """Whether the result came from the cache."""
        return self.result is not None and self.result["from_cache"]


class FetchFailed(Exception):
    """A fetch or extraction failure; the message is the server's error text."""


def result_for(outcome: Outcome, surface: str) -> dict[str, Any]:
    """Return the CrawlResult for ``outcome`` as ``surface`` reports it.

    Failures differ by surface: WS and SSE send the fixed §1.6 shape, NDJSON names the URL
    and the cause and keeps the real time (§2.3), batch uses ``pipeline_error`` (§4).
    """
    if outcome.result is not None:
        return outcome.result
    if surface == "ndjson":
        error_type, message = "processing_error", f"Processing failed for {outcome.url}: {outcome.error_text}"
        elapsed = outcome.elapsed_ms
    else:
        error_type = "pipeline_error" if surface == "batch" else "processing_error"
        message, elapsed = "Failed to process URL", 0
    return {
        "url": outcome.url, "status": 0, "from_cache": False, "gate_decision": "failed",
        "quality_score": 0.0, "processing_time_ms": elapsed, "document": None,
        "error": {"error_type": error_type, "message": message, "retryable": True},
        "cache_key": "",
    }


class Crawler:
    """Fetches and extracts pages; owns the HTTP client session, cache and worker threads.

    Create and close it on the server's event loop.
    """

    def __init__(self, config: ServerConfig, cache: MemoryCache) -> None:
        self.config = config
        self.cache = cache
        self._session: aiohttp.ClientSession | None = None
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="riptide-extract")

    async def start(self) -> None:
        """Open the HTTP client session (needs the running loop)."""
        # trust_env=False: never route loopback fetches through a proxy from the environment.
        self._session = aiohttp.ClientSession(
            trust_env=False, timeout=aiohttp.ClientTimeout(total=self.config.fetch_timeout),
            headers={"User-Agent": "riptide-sync-local/0.1"})

    async def close(self) -> None:
        """Close the session and join the extraction threads."""
        if self._session is not None:
            await self._session.close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def crawl(self, url: str, cache_mode: str, skip_extraction: bool = False) -> Outcome:
        """Crawl one URL through the cache, the fetcher and the extractor."""
        started = time.perf_counter()
        key = cache_key(cache_mode, url)
        use_cache = cache_mode != "bypass"  # §5.2: only "bypass" disables the cache.
        if use_cache:
            document = self.cache.get(key)
            if document is not None:
                return Outcome(url, {
                    "url": url, "status": 200, "from_cache": True, "gate_decision": "cached",
                    "quality_score": 1.0, "processing_time_ms": _ms(started),
                    "document": document, "error": None, "cache_key": key,
                }, None, _ms(started))
        try:
            status, document, quality, gate = await self._fetch_and_extract(url, skip_extraction)
        except FetchFailed as exc:
            return Outcome(url, None, str(exc), _ms(started))
        # An origin error page (e.g. 404) is still a fetched page: it succeeds with the
        # origin's status and its extracted content, but it is not cached, so a later crawl
        # sees the origin again.
        if use_cache and 200 <= status < 300:
            self.cache.put(key, document)
        return Outcome(url, {
            "url": url, "status": status, "from_cache": False, "gate_decision": gate,
            "quality_score": float(quality), "processing_time_ms": _ms(started),
            "document": document, "error": None, "cache_key": key,
        }, None, _ms(started))

    async def _fetch_and_extract(self, url: str, skip_extraction: bool) -> tuple[int, dict[str, Any], float, str]:
        assert self._session is not None, "start() first"
        limit = self.config.max_page_size
        try:
            async with self._session.get(url, allow_redirects=True, max_redirects=10) as resp:
                if resp.content_length is not None and resp.content_length > limit:
                    raise FetchFailed(f"Fetch error: Response body exceeds maximum size of {limit} bytes")
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > limit:
                        raise FetchFailed(f"Fetch error: Response body exceeds maximum size of {limit} bytes")
                    chunks.append(chunk)
                body = b"".join(chunks)
                status, final_url = resp.status, str(resp.url)
                content_type = resp.content_type or "application/octet-stream"
                charset = resp.charset or "utf-8"
        except asyncio.TimeoutError:
            raise FetchFailed(f"Operation timed out: content_fetch - Timeout fetching {url}") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise FetchFailed(f"Fetch error: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        loop = asyncio.get_running_loop()
        try:
            if content_type in _HTML_TYPES or (content_type == "application/octet-stream" and body.lstrip()[:1] == b"<"):
                html = body.decode(charset, errors="replace")
                if skip_extraction:
                    doc, quality, gate = extract.raw_document(url, html)
                else:
                    doc, quality, gate = await loop.run_in_executor(
                        self._executor, extract.extract_html, url, final_url, html)
            elif content_type == "application/pdf" or body.startswith(b"%PDF-"):
                doc, quality, gate = await loop.run_in_executor(self._executor, extract.extract_pdf, url, body)
            elif content_type.startswith("text/") or content_type in ("application/json", "application/xml"):
                doc, quality, gate = extract.extract_text(url, body.decode(charset, errors="replace"))
            else:
                raise FetchFailed(f"Extraction error: Unsupported content type: {content_type}")
        except FetchFailed:
            raise
        except Exception as exc:  # A broken page must fail one URL, never the stream.
            raise FetchFailed(f"Extraction error: {type(exc).__name__}: {exc}") from None
        return status, doc, quality, gate

    def start_many(self, urls: list[str], cache_mode: str, concurrency: int,
                   skip_extraction: bool = False) -> CrawlJob:
        """Start crawling ``urls``, at most ``concurrency`` at once; see :class:`CrawlJob`."""
        return CrawlJob(self, urls, cache_mode, max(concurrency, 0), skip_extraction)


class CrawlJob:
    """URLs being crawled concurrently; completions come out of :meth:`next` in order of
    completion. Always :meth:`cancel` it (idempotent) when done, e.g. in ``finally``."""

    def __init__(self, crawler: Crawler, urls: list[str], cache_mode: str, concurrency: int,
                 skip_extraction: bool) -> None:
        self._queue: asyncio.Queue[tuple[int, Outcome]] = asyncio.Queue()
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int, url: str) -> None:
            async with semaphore:
                outcome = await crawler.crawl(url, cache_mode, skip_extraction)
            self._queue.put_nowait((index, outcome))

        self._tasks = [asyncio.create_task(one(i, u)) for i, u in enumerate(urls)]

    async def next(self, timeout: float | None = None) -> tuple[int, Outcome] | None:
        """Return the next ``(index, outcome)``, or ``None`` if ``timeout`` seconds pass."""
        if timeout is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def cancel(self) -> None:
        """Cancel the URLs still running and wait for them to finish."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
