"""Recipe: fan a long list out over a ThreadPoolExecutor, one client shared by every thread.

The client is thread-safe: its connection pool serves every thread (it keeps up to 256
idle connections per host, so 32 workers never see urllib3's "Connection pool is full").
A stream is not: each worker iterates its own. Results are merged by URL.
"""

import concurrent.futures

from _recipes import riptide_server

from riptide_sync import RipTideClient

WORKERS = 16


def crawl_slice(client, urls):
    """One worker's share: stream it, return {url: word count or error}."""
    pages = {}
    with client.streaming.crawl_ndjson(urls) as stream:
        for event in stream:
            if event.event_type == "result":
                page = event.result
                pages[page.url] = page.document.word_count if page.ok else page.error.message
    return pages


if __name__ == "__main__":
    with riptide_server() as (base_url, urls), RipTideClient(base_url) as client:
        work = urls * 8  # the same 8 pages 8 times (the server's cache answers the repeats)
        slices = [work[i::WORKERS] for i in range(WORKERS)]
        merged = {}
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for pages in pool.map(lambda part: crawl_slice(client, part), slices):
                merged.update(pages)
        print(f"fan-out: {sum(len(s) for s in slices)} crawls over {WORKERS} threads, "
              f"{len(merged)} distinct pages, all ok: {all(isinstance(v, int) for v in merged.values())}")
