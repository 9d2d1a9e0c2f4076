"""``riptide-sync ping``, ``status`` and ``health``: is the server there, and how is it?

Each prints a human summary, or with ``--json`` the reply as one JSON object for scripts.
They make one attempt (no retries), so a script learns the answer quickly; any error is
one line on standard error and exit code 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from ..exceptions import ConfigError, RipTideError
from .common import add_connection_args, add_verbosity_args, examples_parser
from .context import CliContext, Console
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, error_line

__all__ = ["add_info_parsers"]


def add_info_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ping``, ``status`` and ``health``."""
    ping = examples_parser(
        commands, "ping", summary="time a WebSocket JSON ping to the server",
        description="Open a WebSocket to the server's /crawl/ws, send a JSON ping and time the "
                    "pong. Exit 0 on a pong, 1 otherwise.",
        examples="""
  riptide-sync ping                                  # the server at $RIPTIDE_BASE_URL or localhost:8080
  riptide-sync ping --base-url http://127.0.0.1:8080
  riptide-sync ping --json                           # {"success": true, "latency_ms": 0.8, ...}
""")
    status = examples_parser(
        commands, "status", summary="show the server's view of a WebSocket connection",
        description="Open a WebSocket and ask the server for the status of that connection "
                    "(session id, health, message count, connected time, backpressure). "
                    "Exit 0 when the server reports it healthy, 1 otherwise.",
        examples="""
  riptide-sync status
  riptide-sync status --base-url http://127.0.0.1:8080 --api-key KEY
  riptide-sync status --json | python -m json.tool
""")
    health = examples_parser(
        commands, "health", summary="check GET /healthz",
        description="Ask the server's /healthz for its health, version, uptime and dependencies. "
                    "Exit 0 when healthy or degraded, 1 when unhealthy or unreachable.",
        examples="""
  riptide-sync health
  riptide-sync health --base-url http://127.0.0.1:8080
  riptide-sync health --json
  riptide-sync health >/dev/null && echo up          # in a script: the exit code says it
""")
    for parser, func in ((ping, _ping), (status, _status), (health, _health)):
        add_connection_args(parser)
        parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                            help="give up after this many seconds (default: 10)")
        parser.add_argument("--json", action="store_true", help="print the reply as one JSON object")
        add_verbosity_args(parser)
        parser.set_defaults(func=func, parser=parser)


def _client(args: argparse.Namespace, context: CliContext) -> Any:
    from ..client import RipTideClient

    return RipTideClient(context.base_url(args.base_url), args.api_key, timeout=args.timeout,
                         connect_timeout=args.timeout, retry=None)


def _run(args: argparse.Namespace, context: CliContext, command: str,
         call: Callable[[Any, Console], int]) -> int:
    """Build the client, run ``call(client, console)`` and turn failures into one line and
    exit code 1 (2 for a bad option)."""
    console = context.console
    if not args.timeout > 0:
        console.complain(command, f"--timeout must be > 0 seconds, got {args.timeout}")
        return EXIT_USAGE
    try:
        client = _client(args, context)
    except ConfigError as exc:
        console.complain(command, str(exc))
        return EXIT_USAGE
    with client:
        try:
            return int(call(client, console))
        except RipTideError as exc:
            console.complain(command, error_line(exc, client.base_url))
            return EXIT_FAILED


def _print_json(console: Console, value: Any) -> None:
    console.say(json.dumps(value, indent=None, default=str))


def _ping(args: argparse.Namespace, context: CliContext) -> int:
    def call(client: Any, console: Console) -> int:
        from ..protocol.urls import websocket_url

        reply, error = client.streaming._ping()
        if args.json:
            _print_json(console, reply)
        elif reply.get("success"):
            console.say(f"pong from {websocket_url(client.base_url)} in {reply['latency_ms']:.2f} ms "
                        f"(session {reply.get('session_id') or '-'})")
        if not reply.get("success"):
            console.complain("ping", error_line(error or RipTideError("no pong"), client.base_url))
            return EXIT_FAILED
        return EXIT_OK

    return _run(args, context, "ping", call)


def _status(args: argparse.Namespace, context: CliContext) -> int:
    def call(client: Any, console: Console) -> int:
        reply = client.streaming.get_websocket_status()
        healthy = bool(reply.get("is_healthy"))
        if args.json:
            _print_json(console, reply)
        else:
            console.say(
                f"session {reply.get('session_id') or '-'}: {'healthy' if healthy else 'NOT healthy'}, "
                f"{reply.get('message_count', 0)} message(s), connected "
                f"{_ms(reply.get('connected_duration_ms'))}, "
                f"{reply.get('backpressure_count', 0)} backpressure events"
            )
        return EXIT_OK if healthy else EXIT_FAILED

    return _run(args, context, "status", call)


def _health(args: argparse.Namespace, context: CliContext) -> int:
    def call(client: Any, console: Console) -> int:
        report = client.health()
        if args.json:
            _print_json(console, report.model_dump(mode="json"))
        else:
            uptime = f", up {_duration(report.uptime)}" if report.uptime is not None else ""
            version = f" {report.version}" if report.version else ""
            lines = [f"{client.base_url}: {report.status} (RipTide{version}{uptime})"]
            for name, dependency in sorted(report.dependencies.items()):
                if dependency is None:
                    continue
                note = f"  {dependency.message}" if dependency.message else ""
                lines.append(f"  {name:<18} {dependency.status}{note}")
            console.say("\n".join(lines))
        return EXIT_OK if report.healthy else EXIT_FAILED

    return _run(args, context, "health", call)


def _ms(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else _duration(value / 1000)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
