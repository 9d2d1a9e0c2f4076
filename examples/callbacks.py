"""Callbacks: on_message runs on your thread, in order, before each event is yielded."""

from collections import Counter

from _local import riptide_server

from riptide_sync import RipTideClient

seen = Counter()


def on_message(event):
    seen[event.event_type] += 1
    if event.event_type == "result":
        progress = event.data["progress"]
        print(f"{progress['completed']}/{progress['total']} {event.data['result']['url']}")


with riptide_server() as (base_url, urls):
    with RipTideClient(base_url) as client:
        for _ in client.streaming.crawl_websocket(urls, on_message=on_message):
            pass  # the callback did the work
print(dict(seen))
