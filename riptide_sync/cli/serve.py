"""``riptide-sync serve``: the local RipTide-compatible server in the foreground until Ctrl-C,
its banner followed by what is on and the option that turns each thing on."""

from __future__ import annotations

import argparse
import textwrap

from .common import add_verbosity_args
from .context import CliContext
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["add_serve_parser", "serve_hints"]


def add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
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


def _serve(args: argparse.Namespace, context: CliContext) -> int:
    """Run the local RipTide-compatible server in the foreground until Ctrl-C."""
    console = context.console
    try:
        from ..server import Faults, ServerConfig, run_server
    except ImportError as exc:
        console.tell(f"riptide-sync serve needs the server extra: pip install 'riptide-sync[server]' ({exc})")
        return EXIT_USAGE
    try:
        faults = Faults.from_strings(args.fault or [])
    except ValueError as exc:
        console.complain("serve", str(exc))
        return EXIT_USAGE
    config = ServerConfig(
        host=args.host, port=args.port, api_keys=tuple(args.api_key or ()),
        ping_interval=args.ping_interval, pong_timeout=args.pong_timeout,
        ping_during_crawl=args.ping_during_crawl,
        max_urls_per_request=args.max_urls, synthetic_doc_size=args.synthetic_size,
        cache_path=args.cache_path, rate_limit=args.rate_limit, faults=faults,
        auth_lockout_attempts=args.auth_lockout,
        allow_private=True if args.allow_private else None,
    )
    hints = serve_hints(args, faults)

    def announce(line: str) -> None:
        console.say(line)
        if line.lstrip().startswith("demo site:"):  # the last line of the server's banner
            console.say("\n".join(hints))

    try:
        run_server(config, announce=announce)
    except KeyboardInterrupt:  # Ctrl-C before the server's own handler was in place
        pass
    except OSError as exc:
        console.complain("serve", f"cannot listen on {args.host}:{args.port}: {exc}")
        return EXIT_FAILED
    return EXIT_OK


def serve_hints(args: argparse.Namespace, faults: object) -> list[str]:
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
