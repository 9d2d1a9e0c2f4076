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

Exit codes: 0 every URL succeeded; 1 some failed, the stream was incomplete, or the server
could not be used; 2 usage error or a bad URL in the input; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, TextIO
from urllib.parse import urlsplit

from ._cli_common import add_connection_args, complain, error_line, examples_parser
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
  riptide-sync crawl https://example.com https://example.org
  riptide-sync crawl -i urls.txt --output results.jsonl      # one JSON line per result
  riptide-sync crawl -i urls.txt --markdown-dir pages/       # one .md file per page
  cat urls.txt | riptide-sync crawl -i - --transport ndjson --json | jq .event_type
  riptide-sync crawl -i urls.txt --cache-mode bypass --concurrency 8 --timeout-secs 20
  riptide-sync crawl https://example.com --embedded          # no server? start one in-process

  # the bundled demo site, end to end on one machine, no internet needed:
  riptide-sync serve --port 8080 &
  riptide-sync crawl --base-url http://127.0.0.1:8080 \\
      http://127.0.0.1:8080/demo/ http://127.0.0.1:8080/demo/articles/tide-pools.html

input files: one URL per line; blank lines and lines starting with # are skipped.
exit codes: 0 all URLs succeeded, 1 some failed or the stream was incomplete (the
missing URLs are listed), 2 usage error or bad URL in the input (the good ones are
still crawled), 130 interrupted with Ctrl-C.
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
                       help="write one markdown file per successful page (HTTP status < 400) into DIR "
                            "(created if missing)")
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
            lines, label = stdin.read().splitlines(), "<stdin>"
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
    """``--output``: one JSON object per line, ``{"index", "url", "result"}``, flushed as it arrives."""

    def __init__(self, path: str, stdout: TextIO) -> None:
        self.path = path
        self.label = "standard output" if path == "-" else path
        self._file: IO[str] = stdout if path == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115
        self.written = 0

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> None:
        self._file.write(json.dumps({"index": index, "url": url, "result": result},
                                    ensure_ascii=False) + "\n")
        self._file.flush()
        self.written += 1

    def close(self) -> None:
        if self.path != "-":
            self._file.close()

    def describe(self) -> str:
        return f"{self.written} written to {self.label}"


class MarkdownSink:
    """``--markdown-dir``: one ``.md`` file per successful page (no error, HTTP status below
    400), the title as its heading, then the source URL and the page's markdown."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.written = 0

    def add(self, index: int, url: str, result: dict[str, Any], ok: bool) -> None:
        document = result.get("document") or {}
        status = result.get("status") or 0
        if not ok or not document or status >= 400:
            return
        title = " ".join((document.get("title") or "").split()) or url
        body = (document.get("markdown") or document.get("text") or "").strip()
        heading = f"# {title}"
        first_line, _, rest = body.partition("\n")
        if first_line.strip() == heading:  # trafilatura's markdown often opens with the title
            body = rest.strip()
        parts = [heading, "", f"Source: <{url}>", "", body, ""]
        path = os.path.join(self.directory, markdown_file_name(url, index))
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n".join(parts))
        self.written += 1

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.written} markdown file(s) written to {self.directory}"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def markdown_file_name(url: str, index: int, max_length: int = 120) -> str:
    """A safe, unique file name for ``url``: host, path slug and index, e.g.
    ``example.com-docs-intro-html-7.md``. Unique because the index is."""
    parts = urlsplit(url)
    raw = f"{parts.hostname or 'page'}-{parts.port or ''}-{parts.path}-{parts.query}"
    slug = _UNSAFE.sub("-", raw.replace(".", "-")).strip("-.")
    slug = re.sub(r"-{2,}", "-", slug)[:max_length].rstrip("-.") or "page"
    return f"{slug}-{index}.md"


# --- display ----------------------------------------------------------------------------


@dataclass
class Tally:
    """How far the crawl got."""

    total: int
    started: float = field(default_factory=time.monotonic)
    completed: int = 0
    ok: int = 0
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

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-6)

    @property
    def rate(self) -> float:
        """Results per second so far."""
        return self.completed / self.elapsed

    @property
    def success_rate(self) -> float:
        return self.ok / self.completed if self.completed else 1.0

    def eta(self) -> str:
        if not self.completed:
            return "?"
        if self.completed >= self.total:
            return "0 s"
        return f"{(self.total - self.completed) / self.rate:.0f} s"


def result_line(index: int, url: str, result: CrawlResult, width: int) -> str:
    """The human line of one result: index, status, title or error, URL."""
    if result.error is not None:
        message = " ".join(result.error.message.split())
        if len(message) > 70:
            message = message[:69] + "…"
        return f"{index:>{width}}  ERR  {result.error.error_type}: {message}  {url}"
    title = (result.document.title if result.document and result.document.title else "-")
    title = " ".join(title.split())
    if len(title) > 40:
        title = title[:39] + "…"
    return f"{index:>{width}}  {result.status:>3}  {title:<40}  {url}"


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
        self.task = self.progress.add_task("crawl", total=tally.total, ok="", rate="", eta="?")

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
        parser.print_usage(sys.stderr)
        complain("crawl", "no URLs: give them as arguments or with -i FILE (-i - reads standard input)")
        return EXIT_USAGE
    if args.input.count("-") > 1:
        complain("crawl", "-i - (standard input) can be given only once")
        return EXIT_USAGE
    if args.json and args.output == "-":
        complain("crawl", "--json and --output - both print to standard output: choose one")
        return EXIT_USAGE
    if args.retry is not None and args.retry < 1:
        complain("crawl", f"--retry must be at least 1 attempt, got {args.retry}")
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
        complain("crawl", f"bad crawl option: {' '.join(str(exc).split())}")
        return EXIT_USAGE
    try:
        with choose_server(args) as base_url:
            if base_url is None:
                code = EXIT_FAILED
            else:
                code = (run_dask_crawl if args.dask else _crawl)(args, base_url, found.urls, options)
    except KeyboardInterrupt:  # while starting or stopping the embedded server
        complain("crawl", "interrupted")
        return EXIT_INTERRUPTED
    if code == EXIT_OK and found.problems:
        complain("crawl", f"{len(found.problems)} bad URL(s) in the input were skipped")
        return EXIT_USAGE
    return code


def _crawl(args: argparse.Namespace, base_url: str, urls: list[str], options: CrawlOptions | None) -> int:
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
            sink = JsonLinesSink(args.output, sys.stdout)
        elif args.markdown_dir:
            sink = MarkdownSink(args.markdown_dir)
    except OSError as exc:
        complain("crawl", f"cannot write the output: {exc}")
        client.close()
        return EXIT_USAGE
    human_lines = not args.json and sink is None
    tally = Tally(total=len(urls))
    display = make_display(tally, sys.stdout if human_lines else None)
    width = len(str(len(urls) - 1))
    outcome = EXIT_OK
    note: str | None = None
    last_error = ""
    try:
        with client, display:
            stream = getattr(client.streaming, TRANSPORT_METHODS[args.transport])(urls, options)
            with stream:
                for event in stream:
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
    except IncompleteStreamError as exc:
        outcome = EXIT_FAILED
        shown = "\n".join(f"  missing: {url}" for url in exc.missing[:20])
        more = f"\n  ... and {len(exc.missing) - 20} more" if len(exc.missing) > 20 else ""
        note = (f"stream incomplete: {len(exc.missing)} of {tally.total} URLs have no result "
                f"({' '.join(exc.message.split())})\n{shown}{more}")
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
        complain("crawl", first + written + (("\n" + rest) if rest else ""))
        return outcome
    _finish(display, tally, sink, args.transport)
    return EXIT_FAILED if tally.failures else EXIT_OK


def _on_result(event: Any, urls: list[str], tally: Tally, sink: JsonLinesSink | MarkdownSink | None,
               display: PlainDisplay | RichDisplay, width: int) -> None:
    index = event.data["index"]
    url = urls[index] if 0 <= index < len(urls) else event.data.get("result", {}).get("url", "?")
    result: CrawlResult = event.result
    error = result.error
    ok = error is None
    reason = "" if error is None else f"{error.error_type}: {' '.join(error.message.split())}"
    tally.add(index, ok, url, reason)
    if sink is not None:
        sink.add(index, url, event.data.get("result") or {}, ok)
    display.result(result_line(index, url, result, width), ok)


def _finish(display: PlainDisplay | RichDisplay, tally: Tally, sink: JsonLinesSink | MarkdownSink | None,
            transport: str) -> None:
    failed = len(tally.failures)
    written = f"; {sink.describe()}" if sink is not None else ""
    display.message(
        f"done: {tally.completed} of {tally.total} URLs crawled over {transport}, {tally.ok} ok, "
        f"{failed} failed, in {tally.elapsed:.1f} s ({tally.rate:.1f} results/s){written}",
        "bold green" if not failed else "bold yellow",
    )
    for url, reason in tally.failures[:10]:
        display.message(f"  failed: {url}  ({reason})", "red")
    if failed > 10:
        display.message(f"  ... and {failed - 10} more failed", "red")
