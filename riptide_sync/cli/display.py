"""What the person at the terminal sees while ``crawl`` (and ``demo``) run: one line per
result and progress, as a live rich bar when standard error is a terminal
(:class:`RichDisplay`), else as plain lines (:class:`PlainDisplay`). The console it draws
on is given (:class:`~riptide_sync.cli.context.Console`), never looked up."""

from __future__ import annotations

import time
from typing import Any, TextIO, Union

from .context import Console, isatty
from .tally import Tally

__all__ = ["PLAIN_PROGRESS_INTERVAL", "Display", "PlainDisplay", "RichDisplay", "make_display"]

PLAIN_PROGRESS_INTERVAL = 2.0
"""Seconds between two plain progress lines on standard error."""


class PlainDisplay:
    """Result lines on standard output, and a progress line on standard error now and then."""

    def __init__(self, tally: Tally, out: TextIO | None, err: TextIO) -> None:
        self.tally = tally
        self.out = out
        self.err = err
        self._last_progress = time.monotonic()

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def result(self, line: str, ok: bool) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)
        now = time.monotonic()
        if now - self._last_progress >= PLAIN_PROGRESS_INTERVAL and self.tally.completed < self.tally.total:
            self._last_progress = now
            tally = self.tally
            print(f"progress: {tally.completed}/{tally.total} results, {tally.success_rate:.0%} ok, "
                  f"{tally.rate:.1f}/s, ETA {tally.eta()}", file=self.err, flush=True)

    def message(self, text: str, style: str = "") -> None:
        print(text, file=self.err, flush=True)


class RichDisplay:
    """A live rich progress bar on standard error (completed/total, success rate, results per
    second, ETA, elapsed), with result lines printed above it when standard output is the
    terminal too, or written to standard output as plain lines when it is redirected."""

    def __init__(self, tally: Tally, out: TextIO | None, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        self._text = Text
        self.tally = tally
        self.out = out
        self.console = console
        self._out_is_terminal = out is not None and isatty(out)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]crawling"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[ok]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
            redirect_stdout=False,  # stdout may be a file or pipe: never route it to stderr
            redirect_stderr=False,
            refresh_per_second=8,
        )
        self.task = self.progress.add_task(  # a resumed crawl starts where the checkpoint ends
            "crawl", total=tally.total, completed=tally.completed,
            ok=f"{tally.success_rate:.0%} ok" if tally.completed else "", rate="", eta="?")

    def __enter__(self) -> RichDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def result(self, line: str, ok: bool) -> None:
        tally = self.tally
        above = self.out is not None and self._out_is_terminal
        # Refresh at once when a line goes above the bar, which is redrawn from its last render.
        self.progress.update(self.task, completed=tally.completed, ok=f"{tally.success_rate:.0%} ok",
                             rate=f"{tally.rate:.1f}/s", eta=tally.eta(), refresh=above)
        if above:
            self.console.print(self._text(line, style="" if ok else "red"), soft_wrap=True)
        elif self.out is not None:
            print(line, file=self.out, flush=True)

    def message(self, text: str, style: str = "") -> None:
        self.console.print(self._text(text, style=style), soft_wrap=True)


def make_stderr_console() -> Any:
    """The rich console of the progress bar (tests replace this to force a terminal)."""
Display = Union[PlainDisplay, RichDisplay]
"""Either display: both have ``result(line, ok)``, ``message(text, style)`` and are context
managers (the bar is shown inside the block)."""


def make_display(tally: Tally, out: TextIO | None, console: Console) -> Display:
    """A rich display when rich is installed and the console's standard error is a
    terminal, else plain.

    Args:
        tally: the counts the progress shows.
        out: where result lines go (standard output), or None to print none.
        console: the command's console.
    """
    try:
        rich = console.make_rich_console()
    except ImportError:
        return PlainDisplay(tally, out, console.stderr)
    if rich.is_terminal and not rich.is_dumb_terminal:
        try:
            return RichDisplay(tally, out, rich)
        except ImportError:
            pass
    return PlainDisplay(tally, out, console.stderr)
