"""The ``riptide-sync`` command.

Subcommands register themselves in :func:`build_parser`; each is a function taking the
parsed arguments and returning an exit code. Heavy imports (the server and its optional
dependencies, rich) happen inside the subcommand, so the CLI works without the ``server``
and ``cli`` extras for the other commands.

- ``crawl``: :mod:`riptide_sync._cli_crawl`;
- ``ping``, ``status``, ``health``: :mod:`riptide_sync._cli_info`;
- ``serve``, ``demo``: here.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence

from . import __version__
from ._cli_common import add_verbosity_args, log_to
from ._cli_crawl import add_crawl_parser
from ._cli_info import add_info_parsers

MAIN_EXAMPLES = """examples:
  riptide-sync demo                                   # local server + its demo site, no internet
  riptide-sync serve --port 8080                      # the local RipTide-compatible server
  riptide-sync demo --list-urls > urls.txt            # its demo pages (no internet needed)
  riptide-sync crawl -i urls.txt --output results.jsonl
  riptide-sync crawl -i urls.txt --output results.jsonl --resume   # after Ctrl-C: the rest
  riptide-sync ping; riptide-sync status; riptide-sync health --json

Run 'riptide-sync COMMAND --help' for each command's options and examples.
Environment: RIPTIDE_BASE_URL (default http://localhost:8080), RIPTIDE_API_KEY.
"""


def _serve(args: argparse.Namespace) -> int:
    """Run the local RipTide-compatible server in the foreground until Ctrl-C."""
    try:
        from riptide_sync.server import Faults, ServerConfig, run_server
    except ImportError as exc:
        print(f"riptide-sync serve needs the server extra: pip install 'riptide-sync[server]' ({exc})",
              file=sys.stderr)
        return 2
    try:
        faults = Faults.from_strings(args.fault or [])
    except ValueError as exc:
        print(f"riptide-sync serve: {exc}", file=sys.stderr)
        return 2
    config = ServerConfig(
        host=args.host, port=args.port, api_keys=tuple(args.api_key or ()),
        ping_interval=args.ping_interval, pong_timeout=args.pong_timeout,
        ping_during_crawl=args.ping_during_crawl,
        max_urls_per_request=args.max_urls, synthetic_doc_size=args.synthetic_size,
        cache_path=args.cache_path, rate_limit=args.rate_limit, faults=faults,
        auth_lockout_attempts=args.auth_lockout,
        allow_private=True if args.allow_private else None,
    )
    hints = _serve_hints(args, faults)

    def announce(line: str) -> None:
        print(line, flush=True)
        if line.lstrip().startswith("demo site:"):  # the last line of the server's banner
            print("\n".join(hints), flush=True)

    try:
        run_server(config, announce=announce)
    except KeyboardInterrupt:  # Ctrl-C before the server's own handler was in place
        pass
    except OSError as exc:
        print(f"riptide-sync serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve_hints(args: argparse.Namespace, faults: object) -> list[str]:
    """The banner lines after the URLs: what is on, and the option that turns each on."""
    import dataclasses

    keys = len(args.api_key or ())
    auth = (f"  auth:   {keys} API key(s) required as X-API-Key (clients: --api-key or RIPTIDE_API_KEY)"
            if keys else "  auth:   off; --api-key KEY requires a key (repeatable)")
    mode = (f"  mode:   synthetic, {args.synthetic_size}-byte documents, no fetching"
            if args.synthetic_size is not None
            else "  mode:   fetching real pages; --synthetic-size BYTES serves synthetic documents "
                 "without fetching (benchmarks)")
    active = [f"{f.name}={getattr(faults, f.name)}" for f in dataclasses.fields(faults)  # type: ignore[arg-type]
              if getattr(faults, f.name) != f.default]
    names = ", ".join(f.name for f in dataclasses.fields(faults))  # type: ignore[arg-type]
    fault_line = (f"  faults: {', '.join(active)}" if active
                  else f"  faults: none; --fault NAME=VALUE turns one on, e.g. --fault drop_after=3; "
                       f"names: {names}")
    wrapped = ["\n".join(textwrap.wrap(line, 100, subsequent_indent=" " * 10))
               for line in (auth, mode, fault_line)]
    return [*wrapped, "Ctrl-C stops it."]


def _demo(args: argparse.Namespace) -> int:
    """Start the local server in-process and crawl its demo site through the SDK."""
    try:
        from riptide_sync._demo import run_demo
        import riptide_sync.server  # noqa: F401  - fail early with a clear message
    except ImportError as exc:
        print(f"riptide-sync demo needs the server extra: pip install 'riptide-sync[server]' ({exc})",
              file=sys.stderr)
        return 2
    if args.list_urls:
        from riptide_sync.server import demo_urls

        print("\n".join(demo_urls(args.list_urls)))
        return 0
    try:
        return run_demo(args.transport)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


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

    serve = commands.add_parser(
        "serve", help="run the local RipTide-compatible server (needs the server extra)",
        description=textwrap.fill("Run the local RipTide-compatible server until Ctrl-C. It serves "
                                  "the RipTide API and a demo site under /demo/.", 79),
        epilog="""examples:
  riptide-sync serve                                  # http://127.0.0.1:8080, no auth
  riptide-sync serve --port 0                         # any free port (printed at start)
  riptide-sync serve --api-key secret --rate-limit 100
  riptide-sync serve --fault drop_after=3             # cut every first stream after 3 results
  riptide-sync serve --synthetic-size 4096            # no fetching: benchmarks
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any (default: 8080)")
    serve.add_argument("--api-key", action="append", metavar="KEY",
                       help="require this API key (repeatable); default: no auth")
    serve.add_argument("--ping-interval", type=float, default=30.0, metavar="SECONDS",
                       help="WebSocket ping interval (default: 30)")
    serve.add_argument("--pong-timeout", type=float, default=None, metavar="SECONDS",
                       help="lenient: close a WebSocket whose pong is this late (default: never, "
                            "as the real server)")
    serve.add_argument("--ping-during-crawl", action="store_true",
                       help="lenient: keep reading and pinging during a crawl (the real server "
                            "does neither until the summary)")
    serve.add_argument("--synthetic-size", type=int, default=None, metavar="BYTES",
                       help="synthetic mode: no fetching, documents of this many bytes")
    serve.add_argument("--max-urls", type=int, default=100, metavar="N",
                       help="maximum URLs per request (default: 100)")
    serve.add_argument("--cache-path", default=None, metavar="FILE",
                       help="SQLite cache file (default: in memory)")
    serve.add_argument("--rate-limit", type=int, default=None, metavar="N",
                       help="requests per client per minute (default: unlimited)")
    serve.add_argument("--auth-lockout", type=int, default=None, metavar="N",
                       help="block a client IP after N failed authentications a minute, as the "
                            "real server does with 10 (default: off)")
    serve.add_argument("--allow-private", action="store_true",
                       help="lenient: allow private/loopback targets (the demo site needs no such "
                            "thing: it is crawled as http://demo.riptide.test/demo/)")
    serve.add_argument("--fault", action="append", metavar="NAME=VALUE",
                       help="enable a fault scenario, e.g. drop_after=3 (repeatable; see riptide_sync.server.Faults)")
    add_verbosity_args(serve)
    serve.set_defaults(func=_serve, parser=serve)

    demo = commands.add_parser(
        "demo", help="crawl the bundled demo site through the SDK (needs the server extra)",
        description=textwrap.fill("Start the local server in-process on a free loopback port, crawl "
                                  "every page of its demo site through the SDK, print results as "
                                  "they arrive, then the summary. Needs no internet.", 79),
        epilog="""examples:
  riptide-sync demo
  riptide-sync demo --transport ndjson
  riptide-sync serve &                            # then, against that server:
  riptide-sync demo --list-urls > urls.txt
  riptide-sync crawl -i urls.txt --output results.jsonl
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--transport", choices=("ws", "ndjson", "sse"), default="ws",
                      help="stream over WebSocket (default), NDJSON or SSE")
    demo.add_argument("--list-urls", nargs="?", const="http://127.0.0.1:8080", metavar="BASE_URL",
                      help="print the demo site's page URLs for a server at BASE_URL (default "
                           "http://127.0.0.1:8080, where 'riptide-sync serve' listens) and exit")
    add_verbosity_args(demo)
    demo.set_defaults(func=_demo, parser=demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Unknown options after a subcommand are its error: show its usage, not the top's.
        owner: argparse.ArgumentParser = getattr(args, "parser", parser)
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.command == "crawl":  # it routes log lines through its progress display
            return int(args.func(args))
        with log_to(lambda line: print(line, file=sys.stderr, flush=True), args,
                    include_server=args.command == "serve"):
            return int(args.func(args))
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
