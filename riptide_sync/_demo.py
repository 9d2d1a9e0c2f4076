"""``riptide-sync demo``: the local server crawls its bundled demo site through the SDK.

It starts the local server in-process on a free loopback port, streams every demo page
through ``client.streaming.crawl_websocket`` (or another transport), prints each result as
it arrives with a live progress line, and ends with the summary. No internet is needed.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .client import RipTideClient
from .models import StreamingResult

__all__ = ["run_demo"]

TRANSPORT_METHODS = {"ws": "crawl_websocket", "ndjson": "crawl_ndjson", "sse": "crawl_sse"}


def run_demo(transport: str = "ws", out: TextIO | None = None) -> int:
    """Run the demo; return the exit code (0 when every page was crawled).

    Args:
        transport: ``"ws"``, ``"ndjson"`` or ``"sse"``.
        out: where to print; None for standard output.
    """
    from .server import ServerConfig, demo_urls, serve_in_thread

    out = out or sys.stdout
    live = out.isatty()
    with serve_in_thread(ServerConfig()) as server:
        urls = demo_urls(server.base_url)
        print(f"Local RipTide server at {server.base_url}, demo site at {server.base_url}/demo/", file=out)
        print(f"Crawling {len(urls)} demo pages over {transport} ...\n", file=out)
        started = time.monotonic()
        with RipTideClient(server.base_url) as client:
            crawl = getattr(client.streaming, TRANSPORT_METHODS[transport])
            summary: StreamingResult | None = None
            with crawl(urls) as stream:
                for event in stream:
                    _show(event, urls, out, live, started)
                    summary = event
            print(
                f"\n{stream.stats.results} results, {stream.stats.messages} messages, "
                f"{stream.stats.bytes_received / 1024:.0f} KiB received",
                file=out,
            )
    data = summary.data if summary is not None and summary.event_type == "summary" else {}
    return 0 if data.get("successful", 0) + data.get("failed", 0) == len(urls) else 1


def _show(event: StreamingResult, urls: list[str], out: TextIO, live: bool, started: float) -> None:
    kind = event.event_type
    if live:
        out.write("\r\033[K")  # clear the progress line before printing over it
    if kind == "welcome":
        print(f"connected, session {event.data.get('session_id')}", file=out)
    elif kind == "metadata":
        print(f"server accepted {event.data.get('total_urls')} URLs\n", file=out)
    elif kind == "result":
        result = event.result
        assert result is not None  # a result event always has one
        path = urls[event.data["index"]].split("/demo/", 1)[-1] or "(index)"
        if result.error is not None:
            line = f"  failed  {path:<38} {result.error.message}"
        else:
            doc = result.document
            title = (doc.title if doc and doc.title else "-")[:34]
            words = doc.word_count if doc and doc.word_count is not None else 0
            line = (
                f"  {result.status:>3}  q={result.quality_score:.2f}  {path:<38} "
                f"{title:<34} {words:>5} words"
            )
        print(line, file=out)
        progress = event.data["progress"]
        if live:
            elapsed = time.monotonic() - started
            out.write(
                f"[{progress['completed']}/{progress['total']}] "
                f"{progress['success_rate']:.0%} ok, {elapsed:.1f} s"
            )
            out.flush()
    elif kind == "summary":
        data = event.data
        print(
            f"\nsummary: {data.get('successful')} succeeded, {data.get('failed')} failed "
            f"of {data.get('total_urls')} in {data.get('total_processing_time_ms')} ms",
            file=out,
        )
    elif kind == "error":
        print(f"  error: {event.data.get('error_type')}: {event.data.get('message')}", file=out)
