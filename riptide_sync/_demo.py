"""``riptide-sync demo``: the local server crawls its bundled demo site through the SDK.

It starts the local server in-process on a free loopback port, streams every demo page
through ``client.streaming.crawl_websocket`` (or another transport), shows each result as it
arrives under the crawl command's live progress bar (plain lines when piped), and ends with
the summary. No internet is needed.
"""

from __future__ import annotations

import sys

from ._cli_crawl import TRANSPORT_METHODS, Tally, _on_result, make_display
from .client import RipTideClient
from .models import StreamingResult

__all__ = ["run_demo"]


def run_demo(transport: str = "ws") -> int:
    """Run the demo; return the exit code (0 when every page has its result).

    Args:
        transport: ``"ws"``, ``"ndjson"`` or ``"sse"``.
    """
    from .server import ServerConfig, demo_urls, serve_in_thread

    with serve_in_thread(ServerConfig()) as server:
        urls = demo_urls(server.base_url)
        print(f"Local RipTide server at {server.base_url}, demo site at {server.base_url}/demo/")
        print(f"Crawling {len(urls)} demo pages over {transport} through the SDK ...", flush=True)
        tally = Tally(total=len(urls))
        display = make_display(tally, sys.stdout)
        width = len(str(len(urls) - 1))
        summary: StreamingResult | None = None
        with RipTideClient(server.base_url) as client, display:
            crawl = getattr(client.streaming, TRANSPORT_METHODS[transport])
            with crawl(urls) as stream:
                for event in stream:
                    kind = event.event_type
                    if kind == "result":
                        _on_result(event, urls, tally, None, display, width)
                    elif kind == "welcome":
                        display.message(f"connected, session {event.data.get('session_id')}")
                    elif kind == "metadata":
                        display.message(f"the server accepted {event.data.get('total_urls')} URLs")
                    elif kind == "error":
                        display.message(
                            f"error: {event.data.get('error_type')}: {event.data.get('message')}",
                            "yellow",
                        )
                    elif kind == "summary":
                        summary = event
            if summary is not None:
                data = summary.data
                display.message(
                    f"summary: {data.get('successful')} succeeded, {data.get('failed')} failed "
                    f"of {data.get('total_urls')} in {data.get('total_processing_time_ms')} ms; "
                    f"{stream.stats.messages} messages, "
                    f"{stream.stats.bytes_received / 1024:.0f} KiB received",
                    "bold green",
                )
    return 0 if summary is not None and tally.completed == len(urls) else 1
