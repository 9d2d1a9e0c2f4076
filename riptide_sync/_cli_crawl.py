"""``riptide-sync crawl``: stream a crawl to the terminal, JSON Lines or markdown files.

The pieces, in the order a run meets them:

- :func:`collect_urls` reads the URLs from the arguments and ``-i`` files (``-`` is
  standard input), skipping blank lines and ``#`` comments; each bad URL is reported with
  its file and line, and the rest are still crawled.
- :func:`choose_server` picks ``--base-url``, ``$RIPTIDE_BASE_URL`` or the default; when
  none was configured and nothing answers on the default, it offers (or, with
  ``--embedded``, starts) the local server in this process.
- A sink writes each result as it arrives (:class:`JsonLinesSink`, :class:`MarkdownSink`),
  and a display shows one line per result plus progress: a rich progress bar when standard
  error is a terminal (:class:`RichDisplay`), plain lines otherwise or without rich
  (:class:`PlainDisplay`).

Success is ``CrawlResult.ok``. ``-o FILE`` is never truncated silently: ``--resume`` makes
the file the stream's checkpoint (the SDK appends each result to it, and skips the URLs it
already holds), ``--force`` starts it over; ``--checkpoint FILE`` keeps a separate one.

Exit codes: 0 every URL succeeded; 1 some failed, the stream was incomplete, or the server
could not be used; 2 usage error or a bad URL in the input; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, TextIO
from urllib.parse import urlsplit

from ._checkpoint import Checkpoint
from ._cli_common import (
    add_connection_args,
    add_verbosity_args,
    complain,
    error_line,
    examples_parser,
    log_to,
    usage_error,
)
from ._cli_dask import add_dask_arguments, run_dask_crawl
from .exceptions import ConfigError, IncompleteStreamError, RipTideError, ValidationError
from .models import CacheMode, CrawlOptions, CrawlResult
from .protocol.urls import url_problem

__all__ = ["add_crawl_parser", "collect_urls", "choose_server", "markdown_file_name"]

DEFAULT_BASE_URL = "http://localhost:8080"
"""Where the crawl looks for a server when none is configured (tests point it elsewhere)."""

PROBE_TIMEOUT = 2.0
"""Seconds the default server gets to answer ``/healthz`` before it counts as absent."""

PLAIN_PROGRESS_INTERVAL = 2.0
"""Seconds between two plain progress lines on standard error."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

TRANSPORT_METHODS = {"ws": "crawl_websocket", "ndjson": "crawl_ndjson", "sse": "crawl_sse"}

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
                        help="when no server is configured and none answers on localhost:8080, "
                             "start the local server in this process without asking "
                             "(needs the server extra)")
    add_dask_arguments(parser)
    parser.set_defaults(func=run_crawl, parser=parser)


# --- input ------------------------------------------------------------------------------


@dataclass
class UrlList:
    """The URLs to crawl, and what was wrong with the rest of the input."""

    urls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One message per rejected line or argument, naming where it came from."""


def collect_urls(arguments: list[str], inputs: list[str], stdin: TextIO) -> UrlList:
    """Gather URLs from the positional arguments, then each ``-i`` file in order.

    Raises:
        OSError: an input file cannot be read (the message names it).
    """
    found = UrlList()

    def take(url: str, where: str) -> None:
        problem = url_problem(url)
        if problem:
            found.problems.append(f"{where}: {url!r} is not a valid URL: {problem}")
        else:
            found.urls.append(url)

    for position, url in enumerate(arguments, 1):
        take(url, f"argument {position}")
    for name in inputs:
        if name == "-":
            # A pipe from a Windows editor or PowerShell may start with a byte order mark,
            # which open(encoding="utf-8-sig") drops for a file but stdin keeps.
            lines, label = stdin.read().lstrip("\ufeff").splitlines(), "<stdin>"
        else:
            with open(name, encoding="utf-8-sig") as file:
                lines, label = file.read().splitlines(), name
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                take(text, f"{label} line {number}")
    return found


# --- server -----------------------------------------------------------------------------


def server_answers(base_url: str, api_key: str | None) -> bool:
    """Whether a RipTide server answers ``/healthz`` at ``base_url`` (one quick attempt)."""
    from .client import RipTideClient
    from .exceptions import AuthenticationError

    try:
        with RipTideClient(base_url, api_key, timeout=PROBE_TIMEOUT, connect_timeout=PROBE_TIMEOUT,
                           retry=None) as client:
            client.health()
    except AuthenticationError:
        return True  # it is a server; the crawl will report the key problem properly
    except RipTideError:
        return False
    return True


def interactive() -> bool:
    """Whether a person is at the keyboard to answer a question."""
    return sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()


def confirm(question: str) -> bool:
    """Ask a yes/no question on standard error; Enter means yes."""
    sys.stderr.write(f"{question} [Y/n] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return bool(answer) and answer.strip().lower() in ("", "y", "yes")


@contextlib.contextmanager
def choose_server(args: argparse.Namespace) -> Iterator[str | None]:
    """Yield the base URL to crawl through, or None when there is none (already explained).

    An explicit ``--base-url`` or ``$RIPTIDE_BASE_URL`` is used as given. Otherwise the
    default must answer; if it doesn't, the embedded local server is started for the
    duration of the block when ``--embedded`` was given or the user agrees.
    """
    explicit = args.base_url or os.environ.get("RIPTIDE_BASE_URL")
    if explicit:
        yield explicit
        return
    if server_answers(DEFAULT_BASE_URL, args.api_key):
        yield DEFAULT_BASE_URL
        return
    complain("crawl", f"no RipTide server answers at {DEFAULT_BASE_URL} "
                      "(and neither --base-url nor RIPTIDE_BASE_URL is set)")
    if not args.embedded:
        if not interactive() or args.input.count("-"):
            complain("crawl", "pass --base-url URL, start one with 'riptide-sync serve', or add "
                              "--embedded to start the local server in this process")
            yield None
            return
        if not confirm("Start the embedded local server in this process and crawl through it?"):
            yield None
            return
    try:
        from .server import ServerConfig, serve_in_thread
    except ImportError as exc:
        complain("crawl", f"the embedded server needs the server extra: "
                          f"pip install 'riptide-sync[server]' ({exc})")
        yield None
        return
    # Loopback only: the embedded server is for this process, not the network.
    with serve_in_thread(ServerConfig(host="127.0.0.1", port=0)) as running:
        complain("crawl", f"started the embedded local server at {running.base_url} "
                          "(it stops when the crawl ends)")
        yield running.base_url


# --- sinks ------------------------------------------------------------------------------


class JsonLinesSink:
    """``--output``: one JSON object per line, ``{"index", "url", "result"}``, flushed as it arrives.

    When the file is also the checkpoint (``--resume`` without ``--checkpoint``), the SDK
    appends each result to it before yielding it, so this sink writes nothing itself and
    counts the file's lines at the end: one writer, and no line twice.

    Args:
        path: the file, or ``-`` for ``stdout``.
        stdout: standard output.
        urls: the URL list (to count the file's lines for it).
        append: keep the file's lines and add to them (``--resume``), else truncate.
        recorded_by_sdk: the file is the stream's checkpoint: do not write it here.
    """

    def __init__(self, path: str, stdout: TextIO, urls: list[str], *, append: bool = False,
                 recorded_by_sdk: bool = False) -> None:
        self.path = path
        self.label = "standard output" if path == "-" else path
        self._urls = urls
        self._recorded_by_sdk = recorded_by_sdk
        self._before = len(Checkpoint(path, urls).load()) if append and path != "-" else 0
        self._file: IO[str] | None = None
        if path == "-":
            self._file = stdout
        elif not recorded_by_sdk:
            self._file = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        elif not append:
            open(path, "w", encoding="utf-8").close()  # the SDK appends: start it empty
        self.written = 0

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> str | None:
        if self._file is not None:
            self._file.write(json.dumps({"index": index, "url": url, "result": result},
                                        ensure_ascii=False) + "\n")
            self._file.flush()
        self.written += 1
        return None

    def close(self) -> None:
        if self._file is not None and self.path != "-":
            self._file.close()
        if self._recorded_by_sdk:  # exact, even when Ctrl-C fell between recording and yielding
            self.written = len(Checkpoint(self.path, self._urls).load()) - self._before

    def describe(self) -> str:
        kept = f" (after the {self._before} it held)" if self._before else ""
        return f"{self.written} written to {self.label}{kept}"


class MarkdownSink:
    """``--markdown-dir``: one ``.md`` file per successful page (``CrawlResult.ok`` and a
    document), the title as its heading, then the source URL and the page's markdown.

    Files are named by URL (:func:`markdown_file_name`), so a rerun rewrites the same
    files; each file overwritten and each page skipped is said, with the reason.
    """

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.written = 0
        self.overwritten = 0
        self.skipped = 0
        self._mine: set[str] = set()  # files written by this run

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> str | None:
        """Write the page's file; return what to tell the user (a skip, an overwrite) or None."""
        document = result.get("document") or {}
        if not ok or not document:
            self.skipped += 1
            return f"no markdown for {url}: {skip_reason(result, ok)}"
        title = " ".join((document.get("title") or "").split()) or url
        body = (document.get("markdown") or document.get("text") or "").strip()
        heading = f"# {title}"
        first_line, _, rest = body.partition("\n")
        if first_line.strip() == heading:  # trafilatura's markdown often opens with the title
            body = rest.strip()
        parts = [heading, "", f"Source: <{url}>", "", body, ""]
        name = markdown_file_name(url)
        path = os.path.join(self.directory, name)
        note = None
        if name in self._mine:
            note = f"overwrote {path}: {url} is listed more than once"
        elif os.path.exists(path):
            note = f"overwrote {path} (from an earlier run)"
        if note is not None:
            self.overwritten += 1
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n".join(parts))
        self._mine.add(name)
        self.written += 1
        return note

    def close(self) -> None:
        pass

    def describe(self) -> str:
        extra = [f"{self.overwritten} overwritten"] if self.overwritten else []
        extra += [f"{self.skipped} skipped"] if self.skipped else []
        more = f" ({', '.join(extra)})" if extra else ""
        return f"{self.written} markdown file(s) written to {self.directory}{more}"


def skip_reason(result: dict[str, Any], ok: bool) -> str:
    """Why a result has no markdown file: its error, its HTTP status, or no document."""
    error = result.get("error")
    if isinstance(error, dict):
        return f"failed ({error.get('error_type')}: {' '.join(str(error.get('message')).split())})"
    status = result.get("status")
    if not ok:
        return f"failed (HTTP {status})"
    return f"the server sent no document (HTTP {status})"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def markdown_file_name(url: str, max_length: int = 100) -> str:
    """A safe file name for ``url``, the same on every run: host, port and path as a slug,
    then a short hash of the whole URL (two URLs with the same slug differ by it), e.g.
    ``example-com-docs-intro-html-1a2b3c4d.md``."""
    parts = urlsplit(url)
    raw = f"{parts.hostname or 'page'}-{parts.port or ''}-{parts.path}-{parts.query}"
    slug = _UNSAFE.sub("-", raw.replace(".", "-")).strip("-.")
    slug = re.sub(r"-{2,}", "-", slug)[:max_length].rstrip("-.") or "page"
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}.md"


# --- display ----------------------------------------------------------------------------


@dataclass
class Tally:
    """How far the crawl got. Success is ``CrawlResult.ok``, the SDK's one definition."""

    total: int
    started: float = field(default_factory=time.monotonic)
    completed: int = 0
    ok: int = 0
    preloaded: int = 0
    """Results already in the checkpoint when the run began (not crawled again)."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(URL, reason) of each failed result."""
    indices: set[int] = field(default_factory=set)
    """Positions in the URL list that have their result."""

    def add(self, index: int, ok: bool, url: str, reason: str) -> None:
        self.indices.add(index)
        self.completed += 1
        if ok:
            self.ok += 1
        else:
            self.failures.append((url, reason))

    def preload(self, done: dict[int, dict[str, Any]], urls: list[str]) -> None:
        """Count the results a checkpoint already holds."""
        for index, data in sorted(done.items()):
            result = _typed(data, urls[index])
            self.add(index, result.ok, urls[index], failure_reason(result))
        self.preloaded = len(done)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-6)

    @property
    def rate(self) -> float:
        """Results per second so far (this run's)."""
        return (self.completed - self.preloaded) / self.elapsed

    @property
    def success_rate(self) -> float:
        return self.ok / self.completed if self.completed else 1.0

    def eta(self) -> str:
        if self.completed >= self.total:
            return "0 s"
        if self.completed <= self.preloaded:
            return "?"
        return f"{(self.total - self.completed) / self.rate:.0f} s"


CAUSE_HIDDEN = "Failed to process URL"
"""The fixed message of a failed result over WebSocket and SSE: the server sends no cause."""


def _typed(data: dict[str, Any], url: str) -> CrawlResult:
    try:
        return CrawlResult.model_validate(data)
    except ValueError:  # a checkpoint line from another version: count it failed, say why
        return CrawlResult.model_validate({"url": url, "error": {
            "error_type": "unreadable_result", "message": "the checkpoint holds an unreadable result"}})


def failure_reason(result: CrawlResult) -> str:
    """Why ``result`` is not ok, with its cause when the server sent one; "" when ok."""
    if result.ok:
        return ""
    if result.error is None:
        return f"HTTP {result.status}"
    message = " ".join(result.error.message.split())
    reason = f"{result.error.error_type}: {message}"
    if message == CAUSE_HIDDEN:
        reason += " (this transport carries no cause; --transport ndjson shows it)"
    return reason


def result_line(index: int, url: str, result: CrawlResult, width: int) -> str:
    """The human line of one result: index, status, title or error, URL."""
    if result.error is not None:
        message = " ".join(result.error.message.split())
        if len(message) > 100:
            message = message[:99] + "…"
        return f"{index:>{width}}  ERR  {result.error.error_type}: {message}  {url}"
    title = (result.document.title if result.document and result.document.title else "-")
    title = " ".join(title.split())
    if len(title) > 40:
        title = title[:39] + "…"
    mark = "" if result.ok else "  (failed)"
    return f"{index:>{width}}  {result.status:>3}  {title:<40}  {url}{mark}"


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
        self._out_is_terminal = out is not None and _isatty(out)
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
    from rich.console import Console

    return Console(stderr=True)


def make_display(tally: Tally, out: TextIO | None) -> PlainDisplay | RichDisplay:
    """A rich display when rich is installed and standard error is a terminal, else plain."""
    try:
        console = make_stderr_console()
    except ImportError:
        return PlainDisplay(tally, out, sys.stderr)
    if console.is_terminal and not console.is_dumb_terminal:
        try:
            return RichDisplay(tally, out, console)
        except ImportError:
            pass
    return PlainDisplay(tally, out, sys.stderr)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --- the command ------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> CrawlOptions | None:
    fields: dict[str, Any] = {}
    if args.cache_mode is not None:
        fields["cache_mode"] = args.cache_mode
    if args.concurrency is not None:
        fields["concurrency"] = args.concurrency
    if args.timeout_secs is not None:
        fields["timeout_secs"] = args.timeout_secs
    return CrawlOptions(**fields) if fields else None


def run_crawl(args: argparse.Namespace) -> int:
    """Run ``riptide-sync crawl``; return the exit code."""
    parser: argparse.ArgumentParser = args.parser
    if not args.urls and not args.input:
        return usage_error(parser, "crawl", "no URLs: give them as arguments or with -i FILE "
                                            "(-i - reads standard input)")
    if args.input.count("-") > 1:
        return usage_error(parser, "crawl", "-i - (standard input) can be given only once")
    if args.json and args.output == "-":
        return usage_error(parser, "crawl", "--json and --output - both print to standard output: "
                                            "choose one")
    if args.retry is not None and args.retry < 1:
        return usage_error(parser, "crawl", f"--retry must be at least 1 attempt, got {args.retry}")
    output = args.output if args.output not in (None, "-") else None
    if args.resume and args.force:
        return usage_error(parser, "crawl", "--resume keeps the output and --force overwrites it: "
                                            "choose one")
    if args.resume and not (output or args.checkpoint):
        return usage_error(parser, "crawl", "--resume needs the file of the interrupted run: "
                                            "-o FILE (or --checkpoint FILE)")
    checkpoint = args.checkpoint or (output if args.resume else None)
    shared = output is not None and checkpoint is not None and _same_file(output, checkpoint)
    if output and not (args.resume or args.force or shared):
        lines = _line_count(output)
        if lines:
            complain("crawl", f"{output} already holds {lines} line(s): add --resume to crawl only "
                              f"the URLs it has no result for and append to it, or --force to "
                              f"overwrite it")
            return EXIT_USAGE
    try:
        found = collect_urls(args.urls, args.input, sys.stdin)
    except (OSError, UnicodeDecodeError) as exc:
        complain("crawl", f"cannot read the input: {exc}")
        return EXIT_USAGE
    for problem in found.problems:
        complain("crawl", problem)
    if not found.urls:
        complain("crawl", "no valid URLs to crawl" if found.problems else "the input holds no URLs")
        return EXIT_USAGE
    try:
        options = _options(args)
    except (ValidationError, ValueError) as exc:
        return usage_error(parser, "crawl", f"bad crawl option: {' '.join(str(exc).split())}")
    files = Files(output=args.output, checkpoint=checkpoint, shared=shared,
                  append=bool(args.resume or shared) and not args.force)
    if files.append and output:
        try:
            torn = _drop_torn_tail(output)
        except OSError as exc:
            complain("crawl", f"cannot read or write the output: {exc}")
            return EXIT_USAGE
        if torn:
            complain("crawl", f"dropped the last line of {output}, cut short when the earlier run "
                              f"stopped ({torn} bytes); its URL is crawled again")
    if files.append and output and checkpoint and not shared:
        try:
            _reconcile(output, checkpoint, found.urls)
        except OSError as exc:
            complain("crawl", f"cannot read or write the checkpoint: {exc}")
            return EXIT_USAGE
    try:
        with choose_server(args) as base_url:
            if base_url is None:
                code = EXIT_FAILED
            else:
                code = (run_dask_crawl if args.dask else _crawl)(args, base_url, found.urls, options, files)
    except KeyboardInterrupt:  # while starting or stopping the embedded server
        complain("crawl", "interrupted")
        return EXIT_INTERRUPTED
    if code == EXIT_OK and found.problems:
        complain("crawl", f"{len(found.problems)} bad URL(s) in the input were skipped")
        return EXIT_USAGE
    return code


@dataclass
class Files:
    """Where results go: ``--output`` and the checkpoint (``--checkpoint``, or the output
    under ``--resume``), and whether the output is kept and appended to."""

    output: str | None
    checkpoint: str | None
    shared: bool
    """The output file is the checkpoint: the SDK writes it, the sink only counts."""
    append: bool


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.abspath(first) == os.path.abspath(second)


def _line_count(path: str) -> int:
    try:
        with open(path, "rb") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0
    except OSError:
        return 0  # unreadable: opening it for writing reports the problem


def _drop_torn_tail(path: str) -> int:
    """Cut a last line left without its newline (the process died while writing it), so the
    resumed file stays valid JSON Lines; return the bytes dropped."""
    try:
        with open(path, "rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            file.seek(-1, os.SEEK_END)
            if file.read(1) == b"\n":
                return 0
            step, end = 65536, size
            while end > 0:  # find the last newline, reading backwards
                start = max(0, end - step)
                file.seek(start)
                chunk = file.read(end - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                end = start
            else:
                keep = 0
            file.truncate(keep)
            return size - keep
    except FileNotFoundError:
        return 0


def _reconcile(output: str, checkpoint: str, urls: list[str]) -> None:
    """Before resuming with a separate checkpoint: give each file the results only the
    other holds, so the output ends with every URL once and the checkpoint skips them all.
    (A run stopped between the SDK recording a result and the CLI writing it leaves one.)"""
    record, written = Checkpoint(checkpoint, urls), Checkpoint(output, urls)
    in_checkpoint, in_output = record.load(), written.load()
    with open(output, "a", encoding="utf-8") as file:
        for index in sorted(set(in_checkpoint) - set(in_output)):
            file.write(json.dumps({"index": index, "url": urls[index], "result": in_checkpoint[index]},
                                  ensure_ascii=False) + "\n")
    try:
        for index in sorted(set(in_output) - set(in_checkpoint)):
            record.append(index, in_output[index])
    finally:
        record.close()


def _crawl(args: argparse.Namespace, base_url: str, urls: list[str], options: CrawlOptions | None,
           files: Files) -> int:
    from .client import RipTideClient

    retry: Any = {} if args.retry is None else {"retry": args.retry}
    try:
        client = RipTideClient(base_url, args.api_key, **retry)
    except ConfigError as exc:
        complain("crawl", str(exc))
        return EXIT_USAGE
    sink: JsonLinesSink | MarkdownSink | None = None
    try:
        if args.output:
            sink = JsonLinesSink(args.output, sys.stdout, urls, append=files.append,
                                 recorded_by_sdk=files.shared)
        elif args.markdown_dir:
            sink = MarkdownSink(args.markdown_dir)
    except OSError as exc:
        complain("crawl", f"cannot write the output: {exc}")
        client.close()
        return EXIT_USAGE
    human_lines = not args.json and sink is None
    tally = Tally(total=len(urls))
    done: dict[int, dict[str, Any]] = {}
    if files.checkpoint is not None and not (args.force and files.shared):
        done = Checkpoint(files.checkpoint, urls).load()
        tally.preload(done, urls)
        foreign = _line_count(files.checkpoint) - len(done)
        if foreign > 0:
            complain("crawl", f"{foreign} line(s) of {files.checkpoint} are not results for this URL "
                              f"list (another list, or a URL's second line): kept, and not counted")
    display = make_display(tally, sys.stdout if human_lines else None)
    width = len(str(len(urls) - 1))
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
                verbose = bool(getattr(args, "verbose", False) or getattr(args, "debug", False))
                if verbose:
                    display.message(f"crawling {len(urls) - len(done)} URL(s) through {base_url} "
                                    f"over {args.transport}")
                with stream:
                    for event in stream:
                        if verbose and event.event_type in ("welcome", "metadata"):
                            display.message(_describe(event))
                        if args.json:
                            print(json.dumps({"event_type": event.event_type, "data": event.data,
                                              "timestamp": event.timestamp}, ensure_ascii=False,
                                             default=str), flush=True)
                        if event.event_type == "result":
                            _on_result(event, urls, tally, sink, display, width)
                        elif event.event_type == "error":
                            last_error = f"{event.data.get('error_type')}: {event.data.get('message')}"
                            display.message(f"server error event: {last_error}", "yellow")
    except KeyboardInterrupt:
        outcome = EXIT_INTERRUPTED
        note = f"interrupted after {tally.completed} of {tally.total} results"
        after = _how_to_finish(args, files)
    except IncompleteStreamError as exc:
        outcome = EXIT_FAILED
        shown = "\n".join(f"  missing: {url}" for url in exc.missing[:20])
        more = f"\n  ... and {len(exc.missing) - 20} more" if len(exc.missing) > 20 else ""
        cause = exc.__cause__
        why = (error_line(cause, base_url) if cause is not None and _refused(cause)
               else " ".join(exc.message.split()))
        note = (f"stream incomplete: {len(exc.missing)} of {tally.total} URLs have no result "
                f"({why})\n{shown}{more}")
        after = _how_to_finish(args, files)
    except RipTideError as exc:
        outcome = EXIT_FAILED
        note = (f"{error_line(exc, base_url)} (after {tally.completed} of {tally.total} results)")
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
                f"stream ended early{why})\n" + "\n".join(f"  missing: {url}" for url in missing[:20]))
    if note is not None:
        written = f"; {sink.describe()}" if sink is not None else ""
        first, _, rest = note.partition("\n")
        complain("crawl", first + written + _reconnects(stats) + after + (("\n" + rest) if rest else ""))
        return outcome
    _finish(display, tally, sink, args.transport, stats)
    if stats is not None and (getattr(args, "verbose", False) or getattr(args, "debug", False)):
        display.message("stream stats: " + ", ".join(f"{k} {v}" for k, v in stats.as_dict().items()))
    return EXIT_FAILED if tally.failures else EXIT_OK


def _describe(event: Any) -> str:
    """``-v``'s line for a welcome or metadata event."""
    data = event.data
    if event.event_type == "welcome":
        return f"connected: session {data.get('session_id')}"
    return f"the server accepted {data.get('total_urls')} URL(s)"


def _how_to_finish(args: argparse.Namespace, files: Files) -> str:
    """The line that says how to crawl only what is missing, or "" when nothing is kept."""
    if files.checkpoint is not None:  # already resuming, or a checkpoint of its own
        return "\n  rerun the same command: it crawls only the rest"
    if files.output not in (None, "-"):
        return "\n  the same command with --resume crawls only the rest"
    return ""


def _refused(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "connection refused" in text or "errno 111" in text


def _reconnects(stats: Any) -> str:
    """``; 2 reconnects (14 URLs re-requested)``, or "" when the stream never reconnected."""
    if stats is None or not stats.reconnects:
        return ""
    plural = "s" if stats.reconnects != 1 else ""
    return f"; {stats.reconnects} reconnect{plural} ({stats.resumed_urls} URLs re-requested)"


def _on_result(event: Any, urls: list[str], tally: Tally, sink: JsonLinesSink | MarkdownSink | None,
               display: PlainDisplay | RichDisplay, width: int) -> None:
    index = event.data["index"]
    url = urls[index] if 0 <= index < len(urls) else event.data.get("result", {}).get("url", "?")
    result: CrawlResult = event.result
    ok = result.ok
    tally.add(index, ok, url, failure_reason(result))
    said = None
    if sink is not None:
        said = sink.add(index, url, event.data.get("result") or {}, ok)
    display.result(result_line(index, url, result, width), ok)
    if said:
        display.message(said, "yellow")


def _finish(display: PlainDisplay | RichDisplay, tally: Tally, sink: JsonLinesSink | MarkdownSink | None,
            transport: str, stats: Any = None) -> None:
    failed = len(tally.failures)
    written = f"; {sink.describe()}" if sink is not None else ""
    earlier = f" ({tally.preloaded} from the checkpoint)" if tally.preloaded else ""
    display.message(
        f"done: {tally.completed} of {tally.total} URLs crawled over {transport}{earlier}, "
        f"{tally.ok} ok, {failed} failed, in {tally.elapsed:.1f} s ({tally.rate:.1f} results/s)"
        f"{_reconnects(stats)}{written}",
        "bold green" if not failed else "bold yellow",
    )
    for url, reason in tally.failures[:10]:
        display.message(f"  failed: {url}  ({reason})", "red")
    if failed > 10:
        display.message(f"  ... and {failed - 10} more failed", "red")
