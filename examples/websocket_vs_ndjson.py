"""WebSocket vs NDJSON timing on the same URLs (for careful numbers, see benchmarks/)."""

import statistics
import time

from _local import riptide_server

from riptide_sync import CacheMode, CrawlOptions, RipTideClient

ROUNDS = 5
options = CrawlOptions(cache_mode=CacheMode.READ_WRITE)  # warm cache: measure the transport

with riptide_server() as (base_url, urls):
    with RipTideClient(base_url) as client:
        list(client.streaming.crawl_ndjson(urls, options=options))  # warm the cache
        timings = {"crawl_websocket": [], "crawl_ndjson": [], "crawl_sse": []}
        for _ in range(ROUNDS):  # interleaved rounds: machine noise hits all alike
            for name, samples in timings.items():
                started = time.perf_counter()
                first = None
                for event in getattr(client.streaming, name)(urls, options=options):
                    if first is None and event.event_type == "result":
                        first = time.perf_counter() - started
                samples.append((time.perf_counter() - started, first))
        for name, samples in timings.items():
            total = statistics.median(s[0] for s in samples) * 1000
            first = statistics.median(s[1] for s in samples) * 1000
            print(f"{name:16} median {total:7.2f} ms for {len(urls)} URLs, first result after {first:6.2f} ms")
