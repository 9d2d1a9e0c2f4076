"""``crawl`` on this machine: one stream through the SDK, each event to the sink and the
display as it arrives, and the one note (with its exit code) when the crawl did not end
well: interrupted, incomplete, refused, or the output could not be written."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._checkpoint import Checkpoint
from ..exceptions import ConfigError, IncompleteStreamError, RipTideError
from ..models import CrawlOptions, StreamingResult
from .common import TRANSPORT_METHODS, log_to
from .context import CliContext
from .display import make_display
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, error_line, refused
from .files import Files, line_count
from .report import finish, missing_lines, on_result, open_sink, reconnects, say_note
from .tally import Tally

__all__ = ["run_stream"]


def run_stream(args: argparse.Namespace, context: CliContext, base_url: str, urls: list[str],
               options: CrawlOptions | None, files: Files) -> int:
    """Crawl ``urls`` through the server at ``base_url``; return the exit code."""
    from ..client import RipTideClient

    console = context.console
    retry: Any = {} if args.retry is None else {"retry": args.retry}
    try:
        client = RipTideClient(base_url, args.api_key, **retry)
    except ConfigError as exc:
        console.complain("crawl", str(exc))
        return EXIT_USAGE
    try:
        sink = open_sink(args, context, urls, files)
    except OSError as exc:
        console.complain("crawl", f"cannot write the output: {exc}")
        client.close()
        return EXIT_USAGE
    human_lines = not args.json and sink is None
    tally = Tally(total=len(urls))
    done: dict[int, dict[str, Any]] = {}
    if files.checkpoint is not None and not (args.force and files.shared):
        done = Checkpoint(files.checkpoint, urls).load()
        tally.preload(done, urls)
        foreign = line_count(files.checkpoint) - len(done)
        if foreign > 0:
            console.complain("crawl", f"{foreign} line(s) of {files.checkpoint} are not results for "
                                      f"this URL list (another list, or a URL's second line): kept, "
                                      f"and not counted")
    display = make_display(tally, console.stdout if human_lines else None, console)
    width = len(str(len(urls) - 1))
    verbose = bool(getattr(args, "verbose", False) or getattr(args, "debug", False))
    outcome = EXIT_OK
    note: str | None = None
    after = ""
    last_error = ""
    stats: Any = None
    try:
        with client, display, log_to(display.message, args):
            if len(done) == len(urls):
                display.message(f"all {len(urls)} URLs already have a result in {files.checkpoint}: "
                                "nothing to crawl")
            elif done:
                display.message(f"resuming: {len(done)} of {len(urls)} URLs already have a result in "
                                f"{files.checkpoint}; crawling the other {len(urls) - len(done)}")
            if len(done) < len(urls):
                stream = getattr(client.streaming, TRANSPORT_METHODS[args.transport])(
                    urls, options, checkpoint=files.checkpoint)
                stats = stream.stats
                if verbose:
                    display.message(f"crawling {len(urls) - len(done)} URL(s) through {base_url} "
                                    f"over {args.transport}")
                with stream:
                    for event in stream:
                        if verbose and event.event_type in ("welcome", "metadata"):
                            display.message(_describe(event))
                        if args.json:
                            console.say(json.dumps({"event_type": event.event_type, "data": event.data,
                                                    "timestamp": event.timestamp}, ensure_ascii=False,
                                                   default=str))
                        if event.event_type == "result":
                            on_result(event, urls, tally, sink, display, width)
                        elif event.event_type == "error":
                            last_error = f"{event.data.get('error_type')}: {event.data.get('message')}"
                            display.message(f"server error event: {last_error}", "yellow")
    except KeyboardInterrupt:
        outcome = EXIT_INTERRUPTED
        note = f"interrupted after {tally.completed} of {tally.total} results"
        after = _how_to_finish(files)
    except IncompleteStreamError as exc:
        outcome = EXIT_FAILED
        cause = exc.__cause__
        why = (error_line(cause, base_url) if cause is not None and refused(cause)
               else " ".join(exc.message.split()))
        note = (f"stream incomplete: {len(exc.missing)} of {tally.total} URLs have no result "
                f"({why})\n{missing_lines(exc.missing)}")
        after = _how_to_finish(files)
    except RipTideError as exc:
        outcome = EXIT_FAILED
        note = f"{error_line(exc, base_url)} (after {tally.completed} of {tally.total} results)"
    except BrokenPipeError:
        raise  # the reader went away (``| head``): cli.main ends quietly
    except OSError as exc:  # after RipTideError: its connection/timeout errors are OSErrors too
        outcome = EXIT_FAILED
        note = f"cannot write the output: {exc} (after {tally.completed} of {tally.total} results)"
    finally:
        if sink is not None:
            sink.close()
    if note is None and tally.completed < tally.total:  # safety net: the stream ended early
        outcome = EXIT_FAILED
        missing = [url for index, url in enumerate(urls) if index not in tally.indices]
        why = f": {' '.join(last_error.split())}" if last_error else ""
        note = (f"stream incomplete: {len(missing)} of {tally.total} URLs have no result (the "
                f"stream ended early{why})\n{missing_lines(missing)}")
    if note is not None:
        written = f"; {sink.describe()}" if sink is not None else ""
        say_note(context, note, written, reconnects(stats), after)
        return outcome
    finish(display, tally, sink, args.transport, stats)
    if stats is not None and verbose:
        display.message("stream stats: " + ", ".join(f"{k} {v}" for k, v in stats.as_dict().items()))
    return EXIT_FAILED if tally.failures else EXIT_OK


def _describe(event: StreamingResult) -> str:
    """``-v``'s line for a welcome or metadata event."""
    data = event.data
    if event.event_type == "welcome":
        return f"connected: session {data.get('session_id')}"
    return f"the server accepted {data.get('total_urls')} URL(s)"


def _how_to_finish(files: Files) -> str:
    """The line that says how to crawl only what is missing, or "" when nothing is kept."""
    if files.checkpoint is not None:  # already resuming, or a checkpoint of its own
        return "\n  rerun the same command: it crawls only the rest"
    if files.output not in (None, "-"):
        return "\n  the same command with --resume crawls only the rest"
    return ""
