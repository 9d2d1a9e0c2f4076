"""``riptide-sync demo``: the local server crawls its bundled demo site through the SDK.

It starts the local server in-process on a free loopback port, streams every demo page
through ``client.streaming.crawl_websocket`` (or another transport), shows each result as it
arrives under the crawl command's live progress bar (plain lines when piped), and ends with
the summary. No internet is needed.
"""

from __future__ import annotations

import argparse
import textwrap

from ..models import StreamingResult
from .common import TRANSPORT_METHODS, add_verbosity_args
from .context import CliContext, Console
from .display import make_display
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .report import on_result
from .tally import Tally

__all__ = ["add_demo_parser", "run_demo"]

EXAMPLES = """examples:
  riptide-sync demo
  riptide-sync demo --transport ndjson
  riptide-sync serve &                            # then, against that server:
  riptide-sync demo --list-urls > urls.txt
  riptide-sync crawl -i urls.txt --output results.jsonl
"""


def add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    demo = commands.add_parser(
        "demo", help="crawl the bundled demo site through the SDK (needs the server extra)",
        description=textwrap.fill("Start the local server in-process on a free loopback port, crawl "
                                  "every page of its demo site through the SDK, print results as "
                                  "they arrive, then the summary. Needs no internet.", 79),
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--transport", choices=tuple(TRANSPORT_METHODS), default="ws",
                      help="stream over WebSocket (default), NDJSON or SSE")
    demo.add_argument("--list-urls", nargs="?", const="http://127.0.0.1:8080", metavar="BASE_URL",
                      help="print the demo site's page URLs for a server at BASE_URL (default "
                           "http://127.0.0.1:8080, where 'riptide-sync serve' listens) and exit")
    add_verbosity_args(demo)
    demo.set_defaults(func=_demo, parser=demo)


def _demo(args: argparse.Namespace, context: CliContext) -> int:
    """Start the local server in-process and crawl its demo site through the SDK."""
    console = context.console
    try:
        from ..server import demo_urls
    except ImportError as exc:  # fail early with a clear message
        console.tell(f"riptide-sync demo needs the server extra: pip install 'riptide-sync[server]' ({exc})")
        return EXIT_USAGE
    if args.list_urls:
        console.say("\n".join(demo_urls(args.list_urls)))
        return EXIT_OK
    try:
        return run_demo(args.transport, console)
    except KeyboardInterrupt:
        console.tell("\ninterrupted")
        return EXIT_INTERRUPTED


def run_demo(transport: str = "ws", console: Console | None = None) -> int:
    """Run the demo; return the exit code (0 when every page has its result).

    Args:
        transport: ``"ws"``, ``"ndjson"`` or ``"sse"``.
        console: where it prints; None: the process's standard streams.
    """
    from ..client import RipTideClient
    from ..server import ServerConfig, demo_urls, serve_in_thread

    console = console if console is not None else Console()
    with serve_in_thread(ServerConfig()) as server:
        urls = demo_urls(server.base_url)
        console.say(f"Local RipTide server at {server.base_url}, demo site at {server.base_url}/demo/")
        console.say(f"Crawling {len(urls)} demo pages over {transport} through the SDK ...")
        tally = Tally(total=len(urls))
        display = make_display(tally, console.stdout, console)
        width = len(str(len(urls) - 1))
        summary: StreamingResult | None = None
        with RipTideClient(server.base_url) as client, display:
            crawl = getattr(client.streaming, TRANSPORT_METHODS[transport])
            with crawl(urls) as stream:
                for event in stream:
                    kind = event.event_type
                    if kind == "result":
                        on_result(event, urls, tally, None, display, width)
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
    return EXIT_OK if summary is not None and tally.completed == len(urls) else EXIT_FAILED
