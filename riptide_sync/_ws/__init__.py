"""The WebSocket thread bridge (private): one reader thread per connection hands the
socket's messages to the consumer's thread through a bounded queue.

Its threads are the reader (``riptide-ws-reader``) and the handshake's deadline timer;
the stream driver's pumps and the HTTP transports' reader and header-deadline threads
are the others (docs/architecture.md §2).

- ``frames``: sans-I/O parsing of server frames (RFC 6455), with the message size limit.
- ``queue``: the bounded reader-to-consumer hand-off and its overflow policies.
- ``handshake``: the opening handshake (websocket-client), its deadline, TLS and proxy options.
- ``connection``: one connection: the reader thread, keepalive, sends, close.
- ``transport``: :class:`WebSocketTransport`, the ``Transport`` of ``riptide_sync._transport``:
  crawl requests and ``ping``/``status`` request/reply calls on a reused connection.
- ``errors``: the one table by which websocket-client, socket, ssl and OS exceptions become
  riptide_sync's; anything else (a bug) stays itself.
"""

from __future__ import annotations

from .connection import Connection
from .transport import CrawlSource, WebSocketTransport

__all__ = ["WebSocketTransport", "CrawlSource", "Connection"]
