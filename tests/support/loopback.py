"""A listening socket on 127.0.0.1 and the thread that accepts its connections.

The raw servers of the socket-level tests (a scripted WebSocket peer, an HTTP server that
stays silent or dribbles, one that sends scripted bytes) differ in what they do with a
connection, not in how they get one: that part is here, once. ``HTTPServerThread`` and
``answer_every_post`` are the same for tests whose server speaks plain HTTP/1.1 (the
standard library's ``http.server``).
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable
from typing import Any

ACCEPT_POLL = 0.05
"""Seconds the accept loop waits before it looks at the stop flag again."""


class LoopbackServer:
    """Listens on a free loopback port; ``start()`` runs the accept loop on a daemon thread.

    Each accepted socket goes to ``accepted(sock)`` on the accept thread; by default that
    hands it to ``handle(sock)`` on a thread of its own (``spawn``). Override ``accepted``
    to handle connections one at a time instead, or to record them before they are handled.
    The loop ends when ``stopping`` is set, or when the listener is closed under it.
    """

    def __init__(self, *, name: str | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.handler_threads: list[threading.Thread] = []
        self.accept_thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)

    def start(self) -> LoopbackServer:
        self.accept_thread.start()
        return self

    def _accept_loop(self) -> None:
        self.listener.settimeout(ACCEPT_POLL)
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:  # the listener was closed: stop() or the end of the test
                return
            self.accepted(sock)

    def accepted(self, sock: socket.socket) -> None:
        self.spawn(self.handle, sock)

    def handle(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def spawn(self, target: Callable[..., Any], *args: Any) -> threading.Thread:
        """Run ``target(*args)`` on a daemon thread that ``join_handlers`` waits for."""
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.handler_threads.append(thread)
        thread.start()
        return thread

    def join_handlers(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds each for the handler threads started so far."""
        for thread in list(self.handler_threads):
            thread.join(timeout)

    def stop_accepting(self, timeout: float) -> None:
        """Set ``stopping``, close the listener and join the accept thread (``timeout`` s)."""
        self.stopping.set()
        self.listener.close()
        self.accept_thread.join(timeout)


class HTTPServerThread:
    """``http.server.ThreadingHTTPServer`` on a free loopback port, served on a daemon
    thread; a context manager (``close()`` shuts it down and joins the thread)."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port: int = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout)

    def __enter__(self) -> HTTPServerThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing (the default writes each request to stderr)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def answer_every_post(status: int, content_type: str, body: bytes) -> HTTPServerThread:
    """A server that reads each POST's body and answers it with ``status`` and ``body``."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.reply(status, content_type, body)

    return HTTPServerThread(Handler)
