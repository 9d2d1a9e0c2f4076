"""Raw clients for the server tests: websocket-client, requests and plain sockets (no SDK)."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import requests
import websocket

TIMEOUT = 5.0
"""Seconds any single read may take before a test fails."""

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?\+00:00$")

DOC_FIELDS = ["url", "title", "text", "quality_score", "links", "byline", "published_iso", "markdown", "media",
              "language", "reading_time", "word_count", "categories", "site_name", "description", "html",
              "parser_metadata"]
RESULT_FIELDS = ["url", "status", "from_cache", "gate_decision", "quality_score", "processing_time_ms",
                 "document", "error", "cache_key"]


def ws_connect(srv: Any, **kwargs: Any) -> tuple[websocket.WebSocket, dict[str, Any]]:
    """Open a WebSocket to ``srv`` and read its welcome."""
    ws = websocket.create_connection(srv.ws_url, timeout=TIMEOUT, **kwargs)
    welcome = json.loads(ws.recv())
    assert welcome["message_type"] == "welcome"
    return ws, welcome


def ws_send(ws: websocket.WebSocket, request_type: str, data: Any = None) -> None:
    """Send one request envelope."""
    ws.send(json.dumps({"request_type": request_type, "data": {} if data is None else data}))


def ws_recv(ws: websocket.WebSocket) -> dict[str, Any]:
    """Receive one text message as JSON (control frames are handled by the library)."""
    return json.loads(ws.recv())


def ws_crawl(ws: websocket.WebSocket, urls: list[str], options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Crawl over an open socket; return every message up to summary (or a lone error)."""
    data: dict[str, Any] = {"urls": urls}
    if options is not None:
        data["options"] = options
    ws_send(ws, "crawl", data)
    messages = []
    while True:
        message = ws_recv(ws)
        messages.append(message)
        if message["message_type"] in ("summary", "error"):
            return messages


def _post_crawl(srv: Any, path: str, urls: list[str], options: dict[str, Any] | None,
                **kwargs: Any) -> requests.Response:
    """POST ``{"urls", "options"}`` (options only when given) to ``path``."""
    body: dict[str, Any] = {"urls": urls}
    if options is not None:
        body["options"] = options
    return requests.post(srv.base_url + path, json=body, timeout=TIMEOUT, **kwargs)


def ndjson(srv: Any, urls: list[str], options: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    """POST to the NDJSON endpoint."""
    return _post_crawl(srv, "/crawl/stream", urls, options, **kwargs)


def ndjson_lines(response: requests.Response) -> list[dict[str, Any]]:
    """Decode an NDJSON body, one object per line."""
    return [json.loads(line) for line in response.content.split(b"\n") if line]


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Split an SSE body into events: ``{"event", "data", "id", "retry"}`` or ``{"comment"}``."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:]
                continue
            name, _, value = line.partition(":")
            event[name] = value
        if "data" in event:
            try:
                event["json"] = json.loads(event["data"])
            except ValueError:
                event["json"] = None
        events.append(event)
    return events


def sse(srv: Any, urls: list[str], options: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    """POST to the SSE endpoint."""
    return _post_crawl(srv, "/crawl/sse", urls, options, **kwargs)


def raw_http(srv: Any, request: bytes, *, timeout: float = TIMEOUT) -> bytes:
    """Send raw bytes over TCP; return everything read until EOF (or a reset)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def post_bytes(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    """A raw HTTP/1.1 JSON POST that closes the connection after the response."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def urls(n: int, base: str = "https://example.com/page") -> list[str]:
    """``n`` distinct public-looking URLs (for synthetic servers)."""
    return [f"{base}/{i}" for i in range(n)]
