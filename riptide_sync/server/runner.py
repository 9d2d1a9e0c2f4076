"""Running the server: in a background thread (tests, scripts) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from aiohttp import web

from . import demo_site
from .app import create_app
from .config import ServerConfig
from .httpapi import STATE
from .state import Counters, LoggedRequest, ServerState


class RunningServer:
    """A started server: where it listens, what it received, and its counters.

    Returned by :func:`serve_in_thread`; read its attributes from any thread.
    """

    def __init__(self, config: ServerConfig, state: ServerState, port: int) -> None:
        self.config = config
        """The configuration it runs with."""
        self._state = state
        self.port = port
        """The bound port (useful with ``port=0``)."""
        tls = config.ssl_context is not None
        self.base_url = f"{'https' if tls else 'http'}://{_url_host(config.host)}:{port}"
        """E.g. ``http://127.0.0.1:54321`` (``https://`` with ``ssl_context``)."""
        self.ws_url = f"{'wss' if tls else 'ws'}://{_url_host(config.host)}:{port}/crawl/ws"
        """The WebSocket endpoint, e.g. ``ws://127.0.0.1:54321/crawl/ws``."""
        self.demo_url = demo_site.page_url()
        """The demo site's index page as the server crawls it (``http://demo.riptide.test/demo/``)."""
        self.demo_browser_url = f"{self.base_url}/demo/"
        """The same site for a browser: ``/demo/`` on this server."""

    def demo_urls(self) -> list[str]:
        """Every demo page (36 URLs: index, 30 articles, redirect, 404, slow, text, PDF),
        under the reserved host the server resolves internally."""
        return demo_site.demo_urls()

    def article_urls(self) -> list[str]:
        """The 30 demo articles only (fast, all 200, real extracted text)."""
        return demo_site.article_urls()

    @property
    def request_log(self) -> list[LoggedRequest]:
        """A copy of the crawl requests received so far, in order (see LoggedRequest)."""
        return list(self._state.request_log)

    def clear_request_log(self) -> None:
        """Forget the requests logged so far."""
        self._state.request_log.clear()

    @property
    def counters(self) -> Counters:
        """Live counters: ``ws_accepted``, ``ws_open``, ``streams_open``, ``http_requests``, ``crawls``."""
        return self._state.counters

    @property
    def cache_size(self) -> int:
        """Number of cached documents."""
        return len(self._state.cache)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def _start(config: ServerConfig) -> tuple[web.AppRunner, RunningServer]:
    app = create_app(config)
    # handle_signals=False: the CLI installs its own handling; threads cannot have any.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True,
                       ssl_context=config.ssl_context)
    try:
        await site.start()
    except BaseException:
        # The port is taken (or the host is wrong): undo setup(), which started the app
        # (its fetching client session included), so nothing is left unclosed.
        await runner.cleanup()
        raise
    server = site._server  # The asyncio server, to read the port bound for port=0.
    # aiohttp types _server as AbstractServer, which has no .sockets; loop.create_server
    # returns an asyncio.Server.
    assert isinstance(server, asyncio.Server) and server.sockets
    port = server.sockets[0].getsockname()[1]
    return runner, RunningServer(config, app[STATE], port)


@contextlib.contextmanager
def serve_in_thread(config: ServerConfig | None = None, *, ready_timeout: float = 10.0) -> Iterator[RunningServer]:
    """Run a server on its own thread and event loop for the duration of a ``with`` block.

    Args:
        config: settings; the default binds ``127.0.0.1`` on a free port.
        ready_timeout: seconds to wait for the server to listen.

    Yields:
        RunningServer: ``base_url``, ``ws_url``, ``demo_urls()``, ``request_log``, counters.

    Raises:
        RuntimeError: the server failed to start (the cause is chained).

    On exit, every connection is closed, the loop is stopped and the thread is joined.
    """
    config = config or ServerConfig()
    ready = threading.Event()
    holder: dict[str, object] = {}
    loop = asyncio.new_event_loop()
    stop: list[asyncio.Event] = []  # made on the loop: on Python 3.9 an Event binds to the
    # loop current where it is created, and this thread's is not the server's.

    async def main() -> None:
        stop.append(asyncio.Event())
        try:
            runner, running = await _start(config)
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            return
        holder["server"] = running
        ready.set()
        try:
            await stop[0].wait()
        finally:
            await runner.cleanup()
            await _cancel_leftover_tasks()

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="riptide-server", daemon=True)
    thread.start()
    if not ready.wait(ready_timeout):
        raise RuntimeError("local server did not start in time")
    if "error" in holder:
        thread.join()
        raise RuntimeError(f"local server failed to start: {holder['error']}") from holder["error"]  # type: ignore[misc]
    try:
        yield holder["server"]  # type: ignore[misc]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(timeout=30)


def run_server(config: ServerConfig, *, announce: object = print) -> None:
    """Run in the foreground until Ctrl-C (SIGINT) or SIGTERM; used by ``riptide-sync serve``."""
    import signal

    async def main() -> None:
        runner, running = await _start(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before the banner: a Ctrl-C after it stops cleanly
            loop.add_signal_handler(sig, stop.set)
        announce(f"riptide-sync local server listening on {running.base_url}")  # type: ignore[operator]
        announce(f"  WebSocket: {running.ws_url}")  # type: ignore[operator]
        announce(f"  demo site: {running.demo_url} (crawl these), {running.demo_browser_url} "  # type: ignore[operator]
                 "(browse)")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await _cancel_leftover_tasks()

    asyncio.run(main())


async def _cancel_leftover_tasks() -> None:
    """Cancel and await the tasks the runner's cleanup left behind (a request handler still
    lingering over a body the client never sent, e.g. after a 413), as ``asyncio.run``
    does, so closing the loop destroys no pending task."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
