"""Graceful shutdown: break, close() from another thread, and Ctrl-C all end a stream
within a second, with the socket closed and the reader thread joined."""

import threading
import time

from _local import riptide_server

from riptide_sync import RipTideClient


def reader_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("riptide-ws")]


with riptide_server() as (base_url, urls):
    with RipTideClient(base_url) as client:
        # 1. break out of the loop: leaving the with block closes the stream.
        with client.streaming.crawl_websocket(urls) as stream:
            for event in stream:
                if event.event_type == "result":
                    print(f"first result: {event.data['result']['url']}; stopping early")
                    break
        print(f"after break: closed={stream.closed}, reader threads={reader_threads()}")

        # 2. close() from another thread (a watchdog, a signal handler, a GUI button).
        stream = client.streaming.crawl_websocket(urls)
        threading.Timer(0.05, stream.close).start()
        started = time.monotonic()
        count = sum(1 for _ in stream)
        print(f"closed from another thread after {count} events in {time.monotonic() - started:.2f} s")

        # 3. Ctrl-C: KeyboardInterrupt reaches your loop; the stream is already closed.
        try:
            with client.streaming.crawl_websocket(urls) as stream:
                for event in stream:
                    raise KeyboardInterrupt  # what pressing Ctrl-C here would do
        except KeyboardInterrupt:
            print(f"interrupted: closed={stream.closed}, reader threads={reader_threads()}")
