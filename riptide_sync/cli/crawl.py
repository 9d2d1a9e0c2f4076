"""``riptide-sync crawl``: its options, and the checks and file plan before a run.

A run meets, in order (one module each):

- :mod:`~riptide_sync.cli.inputs`: the URLs from the arguments and ``-i`` files (``-`` is
  standard input), skipping blank lines and ``#`` comments; each bad URL is reported with
  its file and line, and the rest are still crawled.
- :mod:`~riptide_sync.cli.files`: ``-o FILE`` is never truncated silently: ``--resume``
  makes the file the stream's checkpoint (the SDK appends each result to it, and skips the
  URLs it already holds), ``--force`` starts it over; ``--checkpoint FILE`` keeps a
  separate one.
- :mod:`~riptide_sync.cli.servers`: ``--base-url``, ``$RIPTIDE_BASE_URL`` or the default;
  when none was configured and nothing answers on the default, it offers (or, with
  ``--embedded``, starts) the local server in this process.
- :mod:`~riptide_sync.cli.crawl_stream` (or :mod:`~riptide_sync.cli.crawl_dask` with
  ``--dask``): the crawl, each result to a sink (:mod:`~riptide_sync.cli.sinks`) and the
  display (:mod:`~riptide_sync.cli.display`).

Success is ``CrawlResult.ok``. Exit codes: 0 every URL succeeded; 1 some failed, the
stream was incomplete, or the server could not be used; 2 usage error or a bad URL in the
input; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from ..client import DEFAULT_BASE_URL
from ..exceptions import ValidationError
from ..models import CacheMode, CrawlOptions
from .common import TRANSPORT_METHODS, add_connection_args, add_verbosity_args, examples_parser
from .context import CliContext
from .crawl_dask import add_dask_arguments, run_dask_crawl
from .crawl_stream import run_stream
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .files import Files, drop_torn_tail, line_count, reconcile, same_file
from .inputs import collect_urls
from .servers import choose_server

__all__ = ["add_crawl_parser", "run_crawl"]

EXAMPLES = """
  # the bundled demo site, end to end on one machine, no internet needed:
  riptide-sync serve &                                        # 127.0.0.1:8080
  riptide-sync demo --list-urls > urls.txt
  riptide-sync crawl -i urls.txt --output results.jsonl      # one JSON line per result
  riptide-sync crawl -i urls.txt --output results.jsonl --resume   # after Ctrl-C: the rest
  riptide-sync crawl -i urls.txt --markdown-dir pages/       # one .md file per ok page
  riptide-sync crawl -i urls.txt --checkpoint crawl.ckpt     # rerun: only what is missing
  cat urls.txt | riptide-sync crawl -i - --transport ndjson --json | jq .event_type
  riptide-sync crawl -i urls.txt --cache-mode bypass --concurrency 8 -v
  riptide-sync crawl --embedded -i urls.txt                  # no server? start one in-process

input files: one URL per line; blank lines and lines starting with # are skipped.
success is CrawlResult.ok; a failed URL is listed with its error type and message.
exit codes: 0 all URLs succeeded, 1 some failed or the stream was incomplete (the
missing URLs are listed), 2 usage error or bad URL in the input (the good ones are
still crawled), 130 interrupted with Ctrl-C (rerun with --resume to finish).
"""


def add_crawl_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``crawl``."""
    parser = examples_parser(
        commands, "crawl", summary="crawl URLs, streaming results as they arrive",
        description="Crawl URLs through a RipTide server, streaming each result as it arrives: "
                    "a live progress bar on a terminal (plain lines when piped), and JSON Lines, "
                    "markdown files or one line per result on standard output.",
        examples=EXAMPLES)
    parser.add_argument("urls", nargs="*", metavar="URL", help="absolute http(s) URLs to crawl")
    parser.add_argument("-i", "--input", action="append", metavar="FILE", default=[],
                        help="read URLs from FILE, one per line ('-' for standard input; repeatable)")
    parser.add_argument("--transport", choices=tuple(TRANSPORT_METHODS), default="ws",
                        help="stream over WebSocket (default), NDJSON or SSE")
    sinks = parser.add_mutually_exclusive_group()
    sinks.add_argument("-o", "--output", metavar="FILE",
                       help="write one JSON line per result (index, url, result) to FILE ('-': stdout)")
    sinks.add_argument("--markdown-dir", metavar="DIR",
                       help="write one markdown file per successful page into DIR (created if "
                            "missing), named by its URL; every page skipped is said with its reason")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="record every result in FILE (JSON Lines) as it arrives; a rerun with "
                             "the same FILE and URLs crawls only the URLs it lacks")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted crawl: crawl only the URLs without a result in "
                             "the --checkpoint FILE (default: the --output FILE) and append to the output")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a non-empty --output FILE (refused without --force or --resume)")
    parser.add_argument("--json", action="store_true",
                        help="print every event (welcome, metadata, result, summary...) as a JSON line")
    parser.add_argument("--cache-mode", choices=sorted({mode.value for mode in CacheMode}),
                        help="the server's cache use (default: the server's)")
    parser.add_argument("--concurrency", type=int, metavar="N",
                        help="pages the server fetches at once for this crawl")
    parser.add_argument("--timeout-secs", type=float, metavar="SECONDS",
                        help="the per-URL time the client allows before it counts the stream "
                             "as stalled and resumes it (client-side only: the server's per-URL "
                             "limit is fixed)")
    parser.add_argument("--retry", type=int, metavar="ATTEMPTS", default=None,
                        help="attempts per request in all, resuming after a lost connection "
                             "(default: 4; 1 = no resume)")
    add_connection_args(parser)
    add_verbosity_args(parser)
    parser.add_argument("--embedded", action="store_true",
                        help=f"when no server is configured and none answers on "
                             f"{urlsplit(DEFAULT_BASE_URL).netloc}, start the local server in this "
                             f"process without asking (needs the server extra)")
    add_dask_arguments(parser)
    parser.set_defaults(func=run_crawl, parser=parser)



def _options(args: argparse.Namespace) -> CrawlOptions | None:
    fields: dict[str, Any] = {}
    if args.cache_mode is not None:
        fields["cache_mode"] = args.cache_mode
    if args.concurrency is not None:
        fields["concurrency"] = args.concurrency
    if args.timeout_secs is not None:
        fields["timeout_secs"] = args.timeout_secs
    return CrawlOptions(**fields) if fields else None


def run_crawl(args: argparse.Namespace, context: CliContext) -> int:
    """Run ``riptide-sync crawl``; return the exit code."""
    parser: argparse.ArgumentParser = args.parser
    console = context.console
    problem = _usage_problem(args)
    if problem is not None:
        return console.usage_error(parser, "crawl", problem)
    output = args.output if args.output not in (None, "-") else None
    checkpoint = args.checkpoint or (output if args.resume else None)
    shared = output is not None and checkpoint is not None and same_file(output, checkpoint)
    if output and not (args.resume or args.force or shared):
        lines = line_count(output)
        if lines:
            console.complain("crawl", f"{output} already holds {lines} line(s): add --resume to crawl "
                                      f"only the URLs it has no result for and append to it, or "
                                      f"--force to overwrite it")
            return EXIT_USAGE
    try:
        found = collect_urls(args.urls, args.input, console.stdin)
    except (OSError, UnicodeDecodeError) as exc:
        console.complain("crawl", f"cannot read the input: {exc}")
        return EXIT_USAGE
    for problem in found.problems:
        console.complain("crawl", problem)
    if not found.urls:
        console.complain("crawl", "no valid URLs to crawl" if found.problems else "the input holds no URLs")
        return EXIT_USAGE
    try:
        options = _options(args)
    except (ValidationError, ValueError) as exc:
        return console.usage_error(parser, "crawl", f"bad crawl option: {' '.join(str(exc).split())}")
    files = Files(output=args.output, checkpoint=checkpoint, shared=shared,
                  append=bool(args.resume or shared) and not args.force)
    if not _repair_for_append(files, found.urls, context):
        return EXIT_USAGE
    try:
        with choose_server(args, context) as base_url:
            if base_url is None:
                code = EXIT_FAILED
            else:
                run = run_dask_crawl if args.dask else run_stream
                code = run(args, context, base_url, found.urls, options, files)
    except KeyboardInterrupt:  # while starting or stopping the embedded server
        console.complain("crawl", "interrupted")
        return EXIT_INTERRUPTED
    if code == EXIT_OK and found.problems:
        console.complain("crawl", f"{len(found.problems)} bad URL(s) in the input were skipped")
        return EXIT_USAGE
    return code


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options taken together, or None."""
    output = args.output if args.output not in (None, "-") else None
    if not args.urls and not args.input:
        return "no URLs: give them as arguments or with -i FILE (-i - reads standard input)"
    if args.input.count("-") > 1:
        return "-i - (standard input) can be given only once"
    if args.json and args.output == "-":
        return "--json and --output - both print to standard output: choose one"
    if args.retry is not None and args.retry < 1:
        return f"--retry must be at least 1 attempt, got {args.retry}"
    if args.resume and args.force:
        return "--resume keeps the output and --force overwrites it: choose one"
    if args.resume and not (output or args.checkpoint):
        return "--resume needs the file of the interrupted run: -o FILE (or --checkpoint FILE)"
    return None


def _repair_for_append(files: Files, urls: list[str], context: CliContext) -> bool:
    """Before a run appends to the output: cut its torn last line, and give it and a separate
    checkpoint each other's results. False (already said) when a file cannot be used."""
    output = files.output if files.output not in (None, "-") else None
    if not (files.append and output):
        return True
    console = context.console
    try:
        torn = drop_torn_tail(output)
    except OSError as exc:
        console.complain("crawl", f"cannot read or write the output: {exc}")
        return False
    if torn:
        console.complain("crawl", f"dropped the last line of {output}, cut short when the earlier "
                                  f"run stopped ({torn} bytes); its URL is crawled again")
    if files.checkpoint and not files.shared:
        try:
            reconcile(output, files.checkpoint, urls)
        except OSError as exc:
            console.complain("crawl", f"cannot read or write the checkpoint: {exc}")
            return False
    return True
