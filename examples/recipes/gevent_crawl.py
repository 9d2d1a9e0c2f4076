"""Recipe: crawling under gevent (``monkey.patch_all()`` first, as gevent requires).

After patching, the client's reader "threads" are greenlets and its sockets cooperative,
so many streams share one OS thread. Greenlets do not preempt: the stream's reader runs
only while the consumer waits or yields. A consumer that computes for long between events
delays the answers to the server's pings; yield in such loops (``gevent.sleep(0)``) or
give the server's pong timeout room (README, "gevent and eventlet").
"""

from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402
from _recipes import riptide_server  # noqa: E402

from riptide_sync import RipTideClient  # noqa: E402


def consume(client, transport, urls):
    """Stream ``urls``; a little CPU work per result, yielding to the other greenlets."""
    done = 0
    with getattr(client.streaming, "crawl_" + transport)(urls) as stream:
        for event in stream:
            if event.event_type == "result":
                deadline = time.monotonic() + 0.05
                while time.monotonic() < deadline:  # stands for parsing, scoring...
                    sum(range(1000))
                    gevent.sleep(0)  # let the readers (and their ping answers) run
                done += event.result.ok
    return done


if __name__ == "__main__":
    with riptide_server() as (base_url, urls), RipTideClient(base_url) as client:
        jobs = [gevent.spawn(consume, client, transport, urls)
                for transport in ("websocket", "ndjson", "sse", "websocket")]
        gevent.joinall(jobs, timeout=60, raise_error=True)
        print(f"gevent: {len(jobs)} streams in greenlets, results ok: {[job.value for job in jobs]}")
