"""Helpers shared by the ``riptide-sync`` subcommands: the options every command has
(connection, verbosity), the help layout, and the library's log lines on the console."""

from __future__ import annotations

import argparse
import contextlib
import logging
import textwrap
from typing import Callable, Iterator

from ..client import DEFAULT_BASE_URL

TRANSPORT_METHODS = {"ws": "crawl_websocket", "ndjson": "crawl_ndjson", "sse": "crawl_sse"}
"""``--transport`` -> the ``client.streaming`` method that crawls over it."""

__all__ = [
    "TRANSPORT_METHODS",
    "add_connection_args",
    "add_verbosity_args",
    "examples_parser",
    "log_to",
]


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--base-url`` and ``--api-key`` (both default to their environment variables)."""
    parser.add_argument(
        "--base-url", metavar="URL", default=None,
        help=f"the RipTide server (default: $RIPTIDE_BASE_URL, else {DEFAULT_BASE_URL})")
    parser.add_argument(
        "--api-key", metavar="KEY", default=None,
        help="sent as X-API-Key (default: $RIPTIDE_API_KEY; none when unset)")


def examples_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """Register a subcommand whose ``--help`` shows ``description`` and an examples epilog."""
    return commands.add_parser(
        name, help=summary, description=textwrap.fill(description, 79),
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_verbosity_args(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """Add ``-v/--verbose`` and ``--debug``, accepted before or after the subcommand (a
    subcommand's own copy must not reset what the top-level one set, hence SUPPRESS)."""
    default: object = False if top else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="say more: where the crawl goes, the session, what the server "
                             "accepted, the stream's counters at the end, and the library's INFO "
                             "log (retries and resumes are always shown)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="log everything at DEBUG (frames, requests; the embedded server's "
                             "log too)")


class _LineHandler(logging.Handler):
    """Hands each record, formatted, to a callable (the crawl's display, or stderr)."""

    def __init__(self, say: Callable[[str], object], level: int) -> None:
        super().__init__(level)
        self.say = say
        self.setFormatter(logging.Formatter("[%(name)s] %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.say(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


@contextlib.contextmanager
def log_to(say: Callable[[str], object], args: argparse.Namespace, *,
           include_server: bool = False) -> Iterator[None]:
    """Show the library's log records through ``say`` for the duration of the block.

    Always on: ``riptide_sync.stream`` at INFO (one line per retry and per resume). With
    ``-v``: every ``riptide_sync`` logger at INFO, except the (embedded) server's unless
    ``include_server``; with ``--debug``: everything at DEBUG.
    """
    debug, verbose = bool(getattr(args, "debug", False)), bool(getattr(args, "verbose", False))
    name = "riptide_sync" if debug or verbose else "riptide_sync.stream"
    level = logging.DEBUG if debug else logging.INFO
    target = logging.getLogger(name)
    handler = _LineHandler(say, level)
    if not (debug or include_server):
        handler.addFilter(lambda record: not record.name.startswith("riptide_sync.server"))
    saved = target.level
    target.setLevel(level)
    target.addHandler(handler)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(saved)
