"""Basic streaming: every result as it arrives, then the summary."""

from _local import riptide_server

from riptide_sync import RipTideClient

with riptide_server() as (base_url, urls):
    with RipTideClient(base_url) as client:
        for result in client.streaming.crawl_websocket(urls):
            if result.event_type == "result":
                page = result.data["result"]
                print(f"[{result.data['index']}] {page['url']} -> HTTP {page['status']}")
            elif result.event_type == "summary":
                print(f"done: {result.data['successful']} of {result.data['total_urls']} succeeded")
