"""Error handling: the retry policy resumes a dropped stream; no hand-written retry loop.

The local server here drops the connection after 3 results (a fault scenario); the client
reconnects with backoff and asks again only for the URLs still missing.
"""

from _local import riptide_server

from riptide_sync import RetryPolicy, RipTideClient
from riptide_sync.exceptions import IncompleteStreamError, StreamingError, ValidationError
from riptide_sync.server import Faults

policy = RetryPolicy(max_attempts=5, initial_backoff=0.2, max_backoff=5.0)

with riptide_server(faults=Faults(drop_after=3)) as (base_url, urls):
    with RipTideClient(base_url, retry=policy) as client:
        try:
            client.streaming.crawl_websocket(urls[0])  # a string, not a list
        except ValidationError as exc:
            print(f"caught before sending anything: {exc}")

        try:
            stream = client.streaming.crawl_websocket(urls)
            with stream:
                indices = [e.data["index"] for e in stream if e.event_type == "result"]
            print(f"{len(indices)} results, each URL once: {sorted(indices) == list(range(len(urls)))}")
            print(f"reconnects: {stream.stats.reconnects}, URLs asked again: {stream.stats.resumed_urls}")
        except IncompleteStreamError as exc:
            print(f"gave up; never crawled: {exc.missing} (last cause: {exc.__cause__})")
        except StreamingError as exc:
            print(f"stream failed: {exc}")
