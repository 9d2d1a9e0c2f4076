"""Which server ``crawl`` goes through: the one configured, else the default if it answers,
else (with ``--embedded``, or when the user agrees) the local server started in this
process for the duration of the crawl."""

from __future__ import annotations

import argparse
import contextlib
from typing import Iterator

from ..exceptions import AuthenticationError, RipTideError
from .context import CliContext

__all__ = ["PROBE_TIMEOUT", "choose_server", "server_answers"]

PROBE_TIMEOUT = 2.0
"""Seconds the default server gets to answer ``/healthz`` before it counts as absent."""


def server_answers(base_url: str, api_key: str | None) -> bool:
    """Whether a RipTide server answers ``/healthz`` at ``base_url`` (one quick attempt)."""
    from ..client import RipTideClient

    try:
        with RipTideClient(base_url, api_key, timeout=PROBE_TIMEOUT, connect_timeout=PROBE_TIMEOUT,
                           retry=None) as client:
            client.health()
    except AuthenticationError:
        return True  # it is a server; the crawl will report the key problem properly
    except RipTideError:
        return False
    return True


@contextlib.contextmanager
def choose_server(args: argparse.Namespace, context: CliContext) -> Iterator[str | None]:
    """Yield the base URL to crawl through, or None when there is none (already explained).

    An explicit ``--base-url`` or ``$RIPTIDE_BASE_URL`` is used as given. Otherwise the
    context's default must answer; if it doesn't, the embedded local server is started for
    the duration of the block when ``--embedded`` was given or the user agrees.
    """
    console = context.console
    explicit = context.configured_base_url(args.base_url)
    if explicit:
        yield explicit
        return
    default = context.default_base_url
    if server_answers(default, args.api_key):
        yield default
        return
    console.complain("crawl", f"no RipTide server answers at {default} "
                              "(and neither --base-url nor RIPTIDE_BASE_URL is set)")
    if not args.embedded:
        if not console.is_interactive() or args.input.count("-"):
            console.complain("crawl", "pass --base-url URL, start one with 'riptide-sync serve', "
                                      "or add --embedded to start the local server in this process")
            yield None
            return
        if not console.confirm("Start the embedded local server in this process and crawl through it?"):
            yield None
            return
    try:
        from ..server import ServerConfig, serve_in_thread
    except ImportError as exc:
        console.complain("crawl", f"the embedded server needs the server extra: "
                                  f"pip install 'riptide-sync[server]' ({exc})")
        yield None
        return
    # Loopback only: the embedded server is for this process, not the network.
    with serve_in_thread(ServerConfig(host="127.0.0.1", port=0)) as running:
        console.complain("crawl", f"started the embedded local server at {running.base_url} "
                                  "(it stops when the crawl ends)")
        yield running.base_url
