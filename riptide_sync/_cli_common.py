"""Helpers shared by the ``riptide-sync`` subcommands: connection options, one-line errors."""

from __future__ import annotations

import argparse
import sys
import textwrap

from .exceptions import AuthenticationError, RipTideError

__all__ = ["add_connection_args", "error_line", "complain", "examples_parser"]


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--base-url`` and ``--api-key`` (both default to their environment variables)."""
    parser.add_argument(
        "--base-url", metavar="URL", default=None,
        help="the RipTide server (default: $RIPTIDE_BASE_URL, else http://localhost:8080)")
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


def error_line(exc: BaseException, base_url: str | None = None) -> str:
    """Say what went wrong in one line, with a hint when one helps."""
    text = " ".join(str(exc).split())
    if isinstance(exc, AuthenticationError) or "HTTP 401" in text or "HTTP 403" in text:
        return f"{text}; pass --api-key or set RIPTIDE_API_KEY"
    if "Connection refused" in text or "connection refused" in text:
        where = base_url or "the server"
        return f"cannot connect to {where}: connection refused (is a server running? try 'riptide-sync serve')"
    if isinstance(exc, RipTideError):
        return text
    return f"{type(exc).__name__}: {text}"


def complain(command: str, message: str) -> None:
    """Print ``riptide-sync COMMAND: message`` on standard error."""
    print(f"riptide-sync {command}: {message}", file=sys.stderr, flush=True)
