"""The steps every crawl front end shares (``crawl``, ``crawl --dask``, ``demo``): the sink
the options ask for, one result through tally, sink and display, the closing ``done:``
line, and the note (with the URLs missing) when a crawl did not end well."""

from __future__ import annotations

import argparse
from typing import Any

from ..models import CrawlResult, StreamingResult
from .context import CliContext
from .display import Display
from .files import Files
from .sinks import JsonLinesSink, MarkdownSink, Sink
from .tally import Tally, failure_reason, result_line

__all__ = [
    "MISSING_SHOWN",
    "finish",
    "missing_lines",
    "on_result",
    "open_sink",
    "reconnects",
    "say_note",
]

MISSING_SHOWN = 20
"""How many missing URLs a note lists before "... and N more"."""


def open_sink(args: argparse.Namespace, context: CliContext, urls: list[str],
              files: Files | None = None) -> Sink | None:
    """The sink of ``--output`` or ``--markdown-dir``, or None when results go to the screen.

    Args:
        files: the run's file plan, or None to write the output whole (``--dask``).

    Raises:
        OSError: the output cannot be opened (or the directory made).
    """
    if args.output:
        return JsonLinesSink(args.output, context.console.stdout, urls,
                             append=files is not None and files.append,
                             recorded_by_sdk=files is not None and files.shared)
    if args.markdown_dir:
        return MarkdownSink(args.markdown_dir)
    return None


def say_note(context: CliContext, note: str, *tails: str) -> None:
    """Print ``riptide-sync crawl: NOTE`` with ``tails`` after the note's first line (what
    was written, reconnects, how to finish), then the note's other lines."""
    first, _, rest = note.partition("\n")
    context.console.complain("crawl", first + "".join(tails) + (("\n" + rest) if rest else ""))


def on_result(event: StreamingResult, urls: list[str], tally: Tally, sink: Sink | None,
              display: Display, width: int) -> None:
    """Count one ``result`` event, hand it to the sink and show its line.

    Args:
        event: the result event (``data["index"]`` its position in ``urls``).
        urls: the crawl's URL list.
        tally: the counts, updated here.
        sink: where results are written, or None.
        display: where its line (and what the sink says) is shown.
        width: the digits of the largest index, to align the lines.
    """
    index = event.data["index"]
    url = urls[index] if 0 <= index < len(urls) else event.data.get("result", {}).get("url", "?")
    result: CrawlResult | None = event.result
    assert result is not None  # the typed result of a "result" event
    ok = result.ok
    tally.add(index, ok, url, failure_reason(result))
    said = None
    if sink is not None:
        said = sink.add(index, url, event.data.get("result") or {}, ok)
    display.result(result_line(index, url, result, width), ok)
    if said:
        display.message(said, "yellow")


def finish(display: Display, tally: Tally, sink: Sink | None, transport: str, stats: Any = None) -> None:
    """Show the ``done:`` line (counts, rate, reconnects, what was written), then the
    failed URLs with their reasons (the first 10).

    Args:
        transport: how the crawl went, as the line says it (``"ws"``, ``"ws on Dask (local:2)"``).
        stats: the stream's ``StreamStats``, or None when there was no stream.
    """
    failed = len(tally.failures)
    written = f"; {sink.describe()}" if sink is not None else ""
    earlier = f" ({tally.preloaded} from the checkpoint)" if tally.preloaded else ""
    display.message(
        f"done: {tally.completed} of {tally.total} URLs crawled over {transport}{earlier}, "
        f"{tally.ok} ok, {failed} failed, in {tally.elapsed:.1f} s ({tally.rate:.1f} results/s)"
        f"{reconnects(stats)}{written}",
        "bold green" if not failed else "bold yellow",
    )
    for url, reason in tally.failures[:10]:
        display.message(f"  failed: {url}  ({reason})", "red")
    if failed > 10:
        display.message(f"  ... and {failed - 10} more failed", "red")


def reconnects(stats: Any) -> str:
    """``; 2 reconnects (14 URLs re-requested)``, or "" when the stream never reconnected
    (or ``stats`` is None)."""
    if stats is None or not stats.reconnects:
        return ""
    plural = "s" if stats.reconnects != 1 else ""
    return f"; {stats.reconnects} reconnect{plural} ({stats.resumed_urls} URLs re-requested)"


def missing_lines(missing: list[str]) -> str:
    """``  missing: URL`` lines for the first :data:`MISSING_SHOWN`, then ``  ... and N
    more``; "" when nothing is missing."""
    shown = "\n".join(f"  missing: {url}" for url in missing[:MISSING_SHOWN])
    more = len(missing) - MISSING_SHOWN
    return shown + (f"\n  ... and {more} more" if more > 0 else "")
