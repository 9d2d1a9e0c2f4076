"""Crawl options: the guide's fields (cache mode, concurrency, timeout) and typed results."""

from _local import riptide_server

from riptide_sync import CacheMode, CrawlOptions, RipTideClient

options = CrawlOptions(cache_mode=CacheMode.READ_WRITE, concurrency=5, timeout_secs=30)

with riptide_server() as (base_url, urls):
    with RipTideClient(base_url) as client:
        for run in ("first run", "second run (served from the cache)"):
            cached = 0
            for event in client.streaming.crawl_websocket(urls, options=options):
                if event.event_type == "result":
                    result = event.result  # typed CrawlResult on top of event.data
                    cached += result.from_cache
                    title = result.document.title if result.document else None
                    print(f"  {result.url}: {title!r}, quality {result.quality_score:.2f}")
            print(f"{run}: {cached} of {len(urls)} from the cache")
        # CacheMode.BYPASS (alias NONE) neither reads nor writes the cache.
        bypass = CrawlOptions(cache_mode=CacheMode.BYPASS)
        fresh = [e for e in client.streaming.crawl_websocket(urls, options=bypass) if e.event_type == "result"]
        print(f"bypass: {sum(e.result.from_cache for e in fresh)} from the cache")
