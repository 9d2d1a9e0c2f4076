"""Scenarios run under gevent or eventlet monkey-patching, one per fresh interpreter.

    python green_scenarios.py LIB SCENARIO BASE_URL [ARTICLE_URL ...]

LIB is ``gevent`` or ``eventlet``; patching happens first, before anything else is
imported, as the libraries require. Each scenario prints ``ok ...`` lines and exits 0, or
raises. Run by tests/legacy/test_green.py.
"""

import sys

LIB = sys.argv[1]
if LIB == "gevent":
    from gevent import monkey

    monkey.patch_all()
    import gevent

    spawn, sleep = gevent.spawn, gevent.sleep
elif LIB == "eventlet":
    import warnings

    with warnings.catch_warnings():  # "Eventlet is deprecated": known, and not ours
        warnings.simplefilter("ignore")
        import eventlet

    eventlet.monkey_patch()
    spawn, sleep = eventlet.spawn, eventlet.sleep
else:
    raise SystemExit(f"unknown library {LIB!r}")

import time  # noqa: E402

from riptide_sync import RipTideClient, StreamConnectionError, _driver  # noqa: E402

# The parallel path is under test: NDJSON/SSE lanes open at once on the fast local server
# (as the lanes_at_once fixture does in-process).
_driver.LANE_DELAY = 0.0

SCENARIO, BASE_URL, ARTICLES = sys.argv[2], sys.argv[3], sys.argv[4:]
SLOW = "http://demo.riptide.test/demo/slow"  # the demo site, served by the server itself
TRANSPORTS = ("websocket", "ndjson", "sse")


def stream(client, transport, urls, **kw):
    # No cache: the slow page must be slow every time.
    return getattr(client.streaming, "crawl_" + transport)(urls, {"cache_mode": "bypass"}, **kw)


def crawl():
    """Every transport and the batch call return every result."""
    with RipTideClient(BASE_URL, retry=None) as client:
        assert [r.url for r in client.crawl(ARTICLES).results] == ARTICLES
        for transport in TRANSPORTS:
            with stream(client, transport, ARTICLES) as events:
                got = sorted(e.result.url for e in events if e.event_type == "result")
            assert got == sorted(ARTICLES), (transport, got)
            print(f"ok crawl {transport}", flush=True)


def concurrent():
    """Four greenlets stream through one client at once."""
    with RipTideClient(BASE_URL, retry=None) as client:

        def one(transport):
            with stream(client, transport, ARTICLES) as events:
                return sorted(e.result.url for e in events if e.event_type == "result")

        jobs = [spawn(one, t) for t in TRANSPORTS + ("ndjson",)]
        results = [job.get() if LIB == "gevent" else job.wait() for job in jobs]
        assert all(r == sorted(ARTICLES) for r in results), results
        print("ok concurrent", flush=True)


def break_out():
    """``break`` while the next result (a slow page) is pending ends the stream at once:
    on one connection (``parallel=1``), and with two requests in flight, one of them
    blocked on the slow page."""
    for per_request, parallel in ((100, 1), (1, 2)):
        with RipTideClient(BASE_URL, retry=None, max_urls_per_request=per_request) as client:
            for transport in TRANSPORTS:
                # One fast result arrives, the slow page's is 1.5 s away.
                urls = ARTICLES[:1] + [SLOW]
                with stream(client, transport, urls, parallel=parallel) as events:
                    for event in events:
                        if event.event_type == "result":
                            started = time.monotonic()
                            break
                elapsed = time.monotonic() - started
                assert elapsed < 1.0, (transport, parallel, elapsed)
                print(f"ok break {transport} parallel={parallel} {elapsed:.3f}", flush=True)


def close_from_greenlet():
    """close() from another greenlet wakes a consumer blocked on the slow page."""
    with RipTideClient(BASE_URL, retry=None) as client:
        for transport in TRANSPORTS:
            events = stream(client, transport, [SLOW])
            closed_at = []

            def closer():
                sleep(0.3)
                closed_at.append(time.monotonic())
                events.close()

            spawn(closer)
            try:
                kinds = [e.event_type for e in events]
            except StreamConnectionError as exc:
                kinds = [f"raised {exc}"]
            assert closed_at, (transport, "ended before close()", kinds)
            elapsed = time.monotonic() - closed_at[0]
            assert "result" not in kinds, (transport, kinds)
            assert elapsed < 1.0, (transport, elapsed)
            print(f"ok close {transport} {elapsed:.3f}", flush=True)


def ctrl_c():
    """Prints "ready" while blocked on the slow page; the test sends SIGINT."""
    transport = ARTICLES.pop() if ARTICLES and ARTICLES[-1] in TRANSPORTS else "websocket"
    # One URL per request, in sequence: whatever came first, the next event is a slow
    # page away (an NDJSON body may start only with the first result).
    client = RipTideClient(BASE_URL, retry=None, max_urls_per_request=1, parallel=1)
    events = stream(client, transport, [SLOW, SLOW + "?2", SLOW + "?3"])
    try:
        with events:
            first = next(events)
            print(f"ready {first.event_type}", flush=True)
            for _ in events:
                pass
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic():.6f}", flush=True)
    finally:
        client.close()


def keepalive(yield_in_loop):
    """A CPU-bound consumer under a server that pings every 0.2 s and cuts after 0.5 s
    without a pong; prints the stream's reconnects."""
    urls = ARTICLES[:2] + [SLOW]  # the stream is still open when the consumer is busy
    with RipTideClient(BASE_URL, retry=5) as client:
        with stream(client, "websocket", urls, parallel=1) as events:
            got = set()
            for event in events:
                if event.event_type == "result":
                    got.add(event.index)
                    deadline = time.monotonic() + 0.8  # 0.8 s of CPU per result
                    while time.monotonic() < deadline:
                        sum(range(1000))
                        if yield_in_loop:
                            sleep(0)  # let the reader greenlet answer pings
            assert got == set(range(len(urls))), got
            print(f"ok keepalive reconnects={events.stats.reconnects}", flush=True)


SCENARIOS = {
    "crawl": crawl,
    "concurrent": concurrent,
    "break": break_out,
    "close": close_from_greenlet,
    "ctrl_c": ctrl_c,
    "keepalive_busy": lambda: keepalive(False),
    "keepalive_yielding": lambda: keepalive(True),
}

if __name__ == "__main__":
    SCENARIOS[SCENARIO]()
