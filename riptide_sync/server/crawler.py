"""The standard pipeline: cache lookup, fetch, extract, gate (docs/protocol.md §5.3, §2.3).

:class:`Crawler` turns one URL into an :class:`Outcome`; the surfaces (WS, NDJSON, SSE,
batch) turn outcomes into their own CrawlResult shapes with :func:`result_for`.
"""

from __future__ import annotations

import asyncio
import http
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from . import demo_site, extract
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


@dataclass
class Fetched:
    """One fetched page, after redirects."""

    status: int
    final_url: str
    content_type: str
    charset: str
    body: bytes


def status_line(status: int) -> str:
    """An HTTP status as reqwest's ``StatusCode`` prints it: ``404 Not Found``."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} <unknown status code>"


def _fetch_error(url: str, message: str) -> FetchFailed:
    """``ApiError::FetchError``'s display text (``errors.rs``)."""
    return FetchFailed(f"Failed to fetch content from {url}: {message}")


def _headers_timeout(url: str) -> FetchFailed:
    return FetchFailed(f"Operation timed out: content_fetch - Timeout fetching {url}")


def _body_timeout(url: str) -> FetchFailed:
    return FetchFailed(f"Operation timed out: content_fetch - Timeout reading response from {url}")


_GATE_HI, _GATE_LO = 0.7, 0.3
"""``GATE_HI_THRESHOLD`` and ``GATE_LO_THRESHOLD`` defaults, used by the enhanced pipeline."""


def enhanced_result(url: str, text: str | None, elapsed_ms: int) -> dict[str, Any]:
    """A batch entry of the enhanced pipeline (§4): placeholder data from the raw body.

    ``text`` is the decoded body, or ``None`` when the fetch failed, which is still an
    entry without ``error``, gated ``unknown``.
    """
    empty: dict[str, Any] = {
        "url": url, "title": None, "text": "", "quality_score": None, "links": [], "byline": None,
        "published_iso": None, "markdown": None, "media": [], "language": None, "reading_time": None,
        "word_count": None, "categories": [], "site_name": None, "description": None, "html": None,
        "parser_metadata": None,
    }
    if text is None:
        gate, quality, document, elapsed_ms = "unknown", 0.0, empty, 0
    else:
        size = len(text.encode())
        quality = 0.8 if size > 10000 else 0.5 if size > 1000 else 0.2
        gate = "raw" if quality >= _GATE_HI else "probes_first" if quality >= _GATE_LO else "headless"
        head = text[:1000]
        document = dict(empty, title="Extracted Title", text=head, markdown=head, language="en",
                        reading_time=5, word_count=len(text.split()))
    return {
        "url": url, "status": 200, "from_cache": False, "gate_decision": gate, "quality_score": quality,
        "processing_time_ms": elapsed_ms, "document": document, "error": None,
        "cache_key": f"riptide:v1:enhanced:{url}",
    }


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
            trust_env=False, timeout=aiohttp.ClientTimeout(total=None),
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
        # With origin_errors_succeed (lenient), an origin error page (e.g. 404) succeeds
        # with the origin's status and its extracted content, but it is not cached.
        if use_cache and 200 <= status < 300:
            self.cache.put(key, document)
        return Outcome(url, {
            "url": url, "status": status, "from_cache": False, "gate_decision": gate,
            "quality_score": float(quality), "processing_time_ms": _ms(started),
            "document": document, "error": None, "cache_key": key,
        }, None, _ms(started))

    async def crawl_enhanced(self, url: str) -> dict[str, Any]:
        """Crawl one URL through the enhanced pipeline (batch's default, §4): fetch with no
        status check, then placeholder extraction; never a failed entry."""
        started = time.perf_counter()
        try:
            page = await self.fetch(url, check_status=False)
        except FetchFailed:
            return enhanced_result(url, None, 0)
        return enhanced_result(url, page.body.decode(page.charset, errors="replace"), _ms(started))

    async def fetch(self, url: str, *, check_status: bool = True) -> Fetched:
        """GET ``url`` (redirects followed), as the real pipeline's fetch does.

        The response headers and the body each get ``fetch_timeout`` seconds (15 + 15 on
        the real server). Hosts named :data:`demo_site.DEMO_HOST` are answered internally.

        Raises:
            FetchFailed: with the real server's wording, e.g. ``Failed to fetch content
                from <url>: Fetch failed: HTTP error: 404 Not Found`` when ``check_status``
                and the final status is not 2xx.
        """
        if urlsplit(url).hostname == demo_site.DEMO_HOST:
            page = await self._fetch_demo(url)
        else:
            page = await self._fetch_network(url)
        if check_status and not 200 <= page.status < 300 and not self.config.origin_errors_succeed:
            raise _fetch_error(url, f"Fetch failed: HTTP error: {status_line(page.status)}")
        return page

    async def _fetch_demo(self, url: str) -> Fetched:
        """Answer a demo-site URL from memory: no socket, independent of the server's port."""
        timeout = self.config.fetch_timeout
        current = url
        for _ in range(11):
            path = urlsplit(current).path
            sub = path[len("/demo/"):] if path.startswith("/demo/") else None
            if sub is None:
                status, content_type, body, target = demo_site.lookup("missing")
            else:
                status, content_type, body, target = demo_site.lookup(sub)
            if sub == demo_site.SLOW_PATH:
                delay = self.config.demo_slow_delay
                if delay > timeout:
                    await asyncio.sleep(timeout)
                    raise _headers_timeout(url)
                await asyncio.sleep(delay)
            if target is None:
                return Fetched(status, current, content_type, "utf-8", body)
            current = urljoin(current, f"/demo/{target}")
        raise _fetch_error(url, f"Fetch failed: Request failed: error following redirect for url ({url})")

    async def _fetch_network(self, url: str) -> Fetched:
        assert self._session is not None, "start() first"
        timeout = self.config.fetch_timeout
        limit = self.config.max_page_size
        try:
            resp = await asyncio.wait_for(
                self._session.get(url, allow_redirects=True, max_redirects=10), timeout)
        except asyncio.TimeoutError:
            raise _headers_timeout(url) from None
        except aiohttp.TooManyRedirects:
            raise _fetch_error(url, f"Fetch failed: Request failed: error following redirect for url ({url})") \
                from None
        except (aiohttp.ClientError, ValueError, OSError):
            raise _fetch_error(url, f"Fetch failed: Request failed: error sending request for url ({url})") \
                from None
        try:
            if resp.content_length is not None and resp.content_length > limit:
                raise _fetch_error(url, f"Failed to read response: body exceeds {limit} bytes")

            async def read() -> bytes:
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > limit:
                        raise _fetch_error(url, f"Failed to read response: body exceeds {limit} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)

            try:
                body = await asyncio.wait_for(read(), timeout)
            except asyncio.TimeoutError:
                raise _body_timeout(url) from None
            except (aiohttp.ClientError, ValueError, OSError):
                raise _fetch_error(url, "Failed to read response: error decoding response body") from None
            return Fetched(resp.status, str(resp.url), resp.content_type or "application/octet-stream",
                           resp.charset or "utf-8", body)
        finally:
            resp.release()

    async def _fetch_and_extract(self, url: str, skip_extraction: bool) -> tuple[int, dict[str, Any], float, str]:
        page = await self.fetch(url)
        status, final_url, content_type, charset, body = (
            page.status, page.final_url, page.content_type, page.charset, page.body)
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
                raise FetchFailed(f"Content extraction failed: Unsupported content type: {content_type}")
        except FetchFailed:
            raise
        except Exception as exc:  # A broken page must fail one URL, never the stream.
            raise FetchFailed(f"Content extraction failed: {type(exc).__name__}: {exc}") from None
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
