"""Handling every message type: the same handler works on WebSocket, NDJSON and SSE."""

import sys

from _local import riptide_server

from riptide_sync import RipTideClient


def handle(event):
    kind = event.event_type
    if kind == "welcome":
        print(f"welcome: session {event.data['session_id']}")
    elif kind == "metadata":
        print(f"metadata: {event.data['total_urls']} URLs")
    elif kind == "result":
        result = event.data["result"]
        state = "ok" if result["error"] is None else f"failed: {result['error']['message']}"
        print(f"result [{event.data['index']}] {result['url']} {state}")
    elif kind == "progress":
        print(f"progress: {event.data}")
    elif kind == "summary":
        print(f"summary: {event.data['successful']} ok, {event.data['failed']} failed")
    elif kind == "error":
        print(f"error: {event.data['error_type']}: {event.data['message']}")
    else:
        print(f"unknown message type {kind!r}: {event.data}")  # future server types pass through


transports = sys.argv[1:] or ["crawl_websocket", "crawl_ndjson", "crawl_sse"]
with riptide_server() as (base_url, urls):
    with RipTideClient(base_url) as client:
        for transport in transports:
            print(f"--- {transport}")
            for event in getattr(client.streaming, transport)(urls[:3]):
                handle(event)
