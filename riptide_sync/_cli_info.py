"""``riptide-sync ping``, ``status`` and ``health``: is the server there, and how is it?

Each prints a human summary, or with ``--json`` the reply as one JSON object for scripts.
They make one attempt (no retries), so a script learns the answer quickly; any error is
one line on standard error and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._cli_common import (
    add_connection_args,
    add_verbosity_args,
    complain,
    error_line,
    examples_parser,
)
from .exceptions import ConfigError, RipTideError

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


def _client(args: argparse.Namespace) -> Any:
    from .client import RipTideClient

    return RipTideClient(args.base_url, args.api_key, timeout=args.timeout,
                         connect_timeout=args.timeout, retry=None)


def _run(args: argparse.Namespace, command: str, call: Any) -> int:
    """Build the client, run ``call(client)`` and turn failures into one line + exit code."""
    if not args.timeout > 0:
        complain(command, f"--timeout must be > 0 seconds, got {args.timeout}")
        return 2
    try:
        client = _client(args)
    except ConfigError as exc:
        complain(command, str(exc))
        return 2
    with client:
        try:
            return int(call(client))
        except RipTideError as exc:
            complain(command, error_line(exc, client.base_url))
            return 1


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=None, default=str), flush=True)


def _ping(args: argparse.Namespace) -> int:
    def call(client: Any) -> int:
        from .protocol.urls import websocket_url

        reply = client.streaming.ping_websocket()
        if args.json:
            _print_json(reply)
        elif reply.get("success"):
            print(f"pong from {websocket_url(client.base_url)} in {reply['latency_ms']:.2f} ms "
                  f"(session {reply.get('session_id') or '-'})", flush=True)
        if not reply.get("success"):
            reason = reply.get("error") or "no pong"
            complain("ping", error_line(RipTideError(reason), client.base_url))
            return 1
        return 0

    return _run(args, "ping", call)


def _status(args: argparse.Namespace) -> int:
    def call(client: Any) -> int:
        reply = client.streaming.get_websocket_status()
        healthy = bool(reply.get("is_healthy"))
        if args.json:
            _print_json(reply)
        else:
            print(
                f"session {reply.get('session_id') or '-'}: {'healthy' if healthy else 'NOT healthy'}, "
                f"{reply.get('message_count', 0)} message(s), connected "
                f"{_ms(reply.get('connected_duration_ms'))}, "
                f"{reply.get('backpressure_count', 0)} backpressure events",
                flush=True,
            )
        return 0 if healthy else 1

    return _run(args, "status", call)


def _health(args: argparse.Namespace) -> int:
    def call(client: Any) -> int:
        report = client.health()
        if args.json:
            _print_json(report.model_dump(mode="json"))
        else:
            uptime = f", up {_duration(report.uptime)}" if report.uptime is not None else ""
            version = f" {report.version}" if report.version else ""
            print(f"{client.base_url}: {report.status} (RipTide{version}{uptime})")
            for name, dependency in sorted(report.dependencies.items()):
                if dependency is None:
                    continue
                note = f"  {dependency.message}" if dependency.message else ""
                print(f"  {name:<18} {dependency.status}{note}")
            sys.stdout.flush()
        return 0 if report.healthy else 1

    return _run(args, "health", call)


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
