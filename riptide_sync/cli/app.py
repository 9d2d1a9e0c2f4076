"""The ``riptide-sync`` command: the top-level parser and the dispatch to each subcommand.

Each subcommand registers its own parser (``add_*_parser``) and is a function taking the
parsed arguments and the run's :class:`~riptide_sync.cli.context.CliContext`, returning an
exit code. Heavy imports (the server and its optional dependencies, rich, Dask) happen
inside the subcommand, so the CLI works without the ``server``, ``cli`` and ``dask``
extras for the other commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..client import DEFAULT_BASE_URL
from .common import add_verbosity_args, log_to
from .context import CliContext
from .crawl import add_crawl_parser
from .demo import add_demo_parser
from .errors import EXIT_FAILED, EXIT_USAGE
from .info import add_info_parsers
from .serve import add_serve_parser

__all__ = ["build_parser", "main"]

MAIN_EXAMPLES = """examples:
  riptide-sync demo                                   # local server + its demo site, no internet
  riptide-sync serve --port 8080                      # the local RipTide-compatible server
  riptide-sync demo --list-urls > urls.txt            # its demo pages (no internet needed)
  riptide-sync crawl -i urls.txt --output results.jsonl
  riptide-sync crawl -i urls.txt --output results.jsonl --resume   # after Ctrl-C: the rest
  riptide-sync ping; riptide-sync status; riptide-sync health --json

Run 'riptide-sync COMMAND --help' for each command's options and examples.
Environment: RIPTIDE_BASE_URL (default {default}), RIPTIDE_API_KEY.
""".format(default=DEFAULT_BASE_URL)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="riptide-sync", description="Synchronous RipTide crawler SDK tools.",
                                     epilog=MAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-V", "--version", action="version",
                        version=f"riptide-sync {__version__} (Python {sys.version.split()[0]})")
    add_verbosity_args(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_crawl_parser(commands)
    add_info_parsers(commands)
    add_serve_parser(commands)
    add_demo_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None, context: CliContext | None = None) -> int:
    """Run the command line; return the exit code.

    Args:
        argv: the arguments after the program name; None: ``sys.argv[1:]``.
        context: the console and default server; None: the process's standard streams and
            :data:`riptide_sync.client.DEFAULT_BASE_URL`.
    """
    context = context if context is not None else CliContext()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Unknown options after a subcommand are its error: show its usage, not the top's.
        owner: argparse.ArgumentParser = getattr(args, "parser", parser)
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help(context.console.stdout)
        return EXIT_USAGE
    try:
        if args.command == "crawl":  # it routes log lines through its progress display
            return int(args.func(args, context))
        with log_to(context.console.tell, args, include_server=args.command == "serve"):
            return int(args.func(args, context))
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        return EXIT_FAILED
