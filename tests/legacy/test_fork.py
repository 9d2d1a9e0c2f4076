"""Fork safety: a client made before ``fork()`` works in the child and shares nothing with
the parent (no pooled socket, reader thread, lock or spill file).

Each scenario runs in a fresh interpreter that has no thread but its main one (see
conftest.py); the server is another process. Parent and child crawl at the same time, many
rounds: before the at-fork handling both used the one inherited pooled socket, and one of
them read the other's response ("parent got 20 foreign results") or the server saw
interleaved bytes (400 "Invalid method encountered").
"""

from __future__ import annotations

import sys

import pytest

from legacy_helpers import check, run_script

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="no fork() on Windows"),
    pytest.mark.usefixtures("lanes_at_once"),  # NDJSON/SSE lanes at once, fast local server
]

ROUNDS = 8

BATCH_IN_BOTH = r"""
import os, sys, threading
from riptide_sync import RipTideClient

base_url, rounds, transport = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = RipTideClient(base_url, retry=None, timeout=10)
client.crawl(["https://example.com/warm/0"])  # a pooled keep-alive connection, inherited
if transport == "batch-without-hook":
    # As after a fork() from C code that runs no at-fork hook: the pid check must do.
    from riptide_sync import _fork

    _fork._live.discard(client)
    transport = "batch"


def crawl(urls):
    if transport == "batch":
        return [r.url for r in client.crawl(urls).results]
    stream = getattr(client.streaming, "crawl_" + transport)(urls)
    with stream:
        return [e.result.url for e in stream if e.event_type == "result"]


problems = []
for r in range(rounds):
    # No stream is open: no thread of ours may be alive but the idle alarm thread
    # (riptide_sync._alarm), which the at-fork hook stops before the fork: Python 3.12+
    # would warn otherwise, and warnings are errors here.
    others = [t for t in threading.enumerate() if t.name != "riptide-alarm"]
    assert others == [threading.main_thread()], threading.enumerate()
    pid = os.fork()
    assert threading.active_count() == 1, threading.enumerate()
    who = "child" if pid == 0 else "parent"
    urls = [f"https://example.com/{who}/{r}/{i}" for i in range(20)]
    try:
        got = crawl(urls)
        foreign = [u for u in got if u not in urls]
        if foreign or sorted(got) != sorted(urls):
            problem = f"round {r}: {who} got {len(foreign)} foreign results, {len(got)} in all"
        else:
            problem = ""
    except Exception as exc:
        problem = f"round {r}: {who}: {type(exc).__name__}: {exc}"
    if pid == 0:
        if problem:
            print(problem, flush=True)
        os._exit(1 if problem else 0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status:
        problems.append(f"round {r}: the child failed (status {status})")
    if problem:
        problems.append(problem)
client.close()
print("\n".join(problems) or "ok", flush=True)
sys.exit(1 if problems else 0)
"""


@pytest.mark.parametrize("transport", ["batch", "batch-without-hook", "ndjson", "sse", "websocket"])
def test_parent_and_child_crawl_at_once_with_a_client_made_before_fork(server_process, transport):
    out = check(run_script(BATCH_IN_BOTH, server_process.base_url, str(ROUNDS), transport))
    assert out.strip().endswith("ok"), out


MULTIPROCESSING = r"""
import multiprocessing, sys
from riptide_sync import RipTideClient

base_url = sys.argv[1]
client = RipTideClient(base_url, retry=None, timeout=10)  # module level, as in a web app
client.crawl(["https://example.com/warm/0"])


def job(tag):
    urls = [f"https://example.com/{tag}/{i}" for i in range(20)]
    got = [r.url for r in client.crawl(urls).results]
    return tag, got == urls


if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        pending = pool.map_async(job, [f"worker{i}" for i in range(12)])
        mine = [job(f"parent{i}") for i in range(6)]  # the parent crawls meanwhile
        theirs = pending.get(60)
    bad = [tag for tag, ok in mine + theirs if not ok]
    client.close()
    print("bad:", bad, flush=True)
    sys.exit(1 if bad else 0)
"""


def test_multiprocessing_fork_pool_workers_and_parent_share_one_client(server_process, tmp_path):
    script = tmp_path / "mp_fork.py"
    script.write_text(MULTIPROCESSING)
    out = check(run_script(f"import runpy, sys; sys.argv = [{str(script)!r}, *sys.argv[1:]]; "
                           f"runpy.run_path({str(script)!r}, run_name='__main__')",
                           server_process.base_url))
    assert "bad: []" in out


OPEN_STREAM_AT_FORK = r"""
import gc, os, sys, time, warnings
# A stream is open at the fork, so its reader thread is alive: Python 3.12+ warns about
# forking a multi-threaded process. That is this scenario's point; nothing else may warn.
warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)
from riptide_sync import RipTideClient, StreamConnectionError

base_url, transport = sys.argv[1], sys.argv[2]
client = RipTideClient(base_url, retry=None, timeout=10, queue_size=4, parallel=1)
urls = [f"https://example.com/parent/{i}" for i in range(150)]
stream = getattr(client.streaming, "crawl_" + transport)(urls)
events = iter(stream)
first = [next(events) for _ in range(3)]
spill_fd = None
if transport == "websocket":
    queue = stream._core.lanes[0].transport.connection.queue
    deadline = time.monotonic() + 10
    while queue._spill_fd is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the reader spills what the paused consumer does not take
    spill_fd = queue._spill_fd
    # The spill file is unlinked as soon as it is made: only its descriptor holds it.
    assert spill_fd is not None and os.fstat(spill_fd).st_nlink == 0, "no spill file before the fork"
    spilled = os.fstat(spill_fd).st_size

pid = os.fork()
if pid == 0:
    code = 0
    try:
        next(events)
        print("child: the parent's stream yielded an event", flush=True)
        code = 2
    except StreamConnectionError as exc:
        if "before a fork()" not in str(exc):
            print(f"child: unclear error {exc}", flush=True)
            code = 3
    started = time.monotonic()
    stream.close()
    del stream, events, first
    gc.collect()
    if time.monotonic() - started > 0.5:
        print("child: close() took too long", flush=True)
        code = 4
    mine = [f"https://example.com/child/{i}" for i in range(30)]
    with getattr(client.streaming, "crawl_" + transport)(mine) as own:
        got = [e.result.url for e in own if e.event_type == "result"]
    if sorted(got) != sorted(mine):
        print(f"child: own stream got {len(got)} results", flush=True)
        code = 5
    os._exit(code)

_, status = os.waitpid(pid, 0)
child_code = status >> 8
if spill_fd is not None and stream._core.lanes[0].transport.connection.queue._spill_fd == spill_fd:
    # The child closed its copy only: the parent's descriptor and data are intact.
    assert os.fstat(spill_fd).st_size >= spilled, "the child truncated the parent's spill file"
rest = list(events)
indexes = [e.index for e in first + rest if e.event_type == "result"]
summary = [e for e in rest if e.event_type == "summary"]
client.close()
print(f"child={child_code} results={len(indexes)} unique={len(set(indexes))} "
      f"summary={len(summary)}", flush=True)
if spill_fd is not None:
    try:  # the descriptor number may be reused by now: look at what it names
        target = os.readlink(f"/proc/self/fd/{spill_fd}")
    except OSError:
        target = ""
    assert "riptide-spill-" not in target, "the spill file's descriptor was left open after close()"
sys.exit(0 if child_code == 0 and sorted(indexes) == list(range(150)) and summary else 1)
"""


@pytest.mark.parametrize("transport", ["websocket", "ndjson", "sse"])
def test_a_stream_open_at_fork_stays_the_parents_and_the_child_opens_its_own(
        server_process, transport):
    out = check(run_script(OPEN_STREAM_AT_FORK, server_process.base_url, transport))
    assert "child=0 results=150 unique=150 summary=1" in out, out


LOCKS_HELD_AT_FORK = r"""
import os, signal, sys, threading, warnings
warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)
from riptide_sync import RipTideClient

base_url = sys.argv[1]
client = RipTideClient(base_url, retry=None, timeout=10)
client.crawl(["https://example.com/warm/0"])
# The pool that holds the warm connection (and would give it to the next request).
pool = next(iter(client.http.get_adapter(base_url).poolmanager.pools._container.values()))
held, release = threading.Event(), threading.Event()


def hold():
    # A parent thread in the middle of taking a connection, at the moment of the fork.
    with client._session_lock, pool.pool.mutex:
        held.set()
        release.wait()


threading.Thread(target=hold, daemon=True).start()
held.wait(5)
pid = os.fork()
if pid == 0:
    signal.alarm(10)  # a deadlock kills the child with SIGALRM instead of hanging the test
    urls = [f"https://example.com/child/{i}" for i in range(5)]
    ok = [r.url for r in client.crawl(urls).results] == urls
    client.close()
    # A normal exit, not os._exit(): urllib3 closes leftover pools at exit too, through
    # their queue's lock.
    sys.exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
release.set()
print(f"child status {status}", flush=True)
sys.exit(0 if status == 0 else 1)
"""


def test_the_child_takes_no_lock_a_parent_thread_held_at_the_fork(server_process):
    """The client's lock and its pool's lock, held by another parent thread at the fork,
    stay held for ever in the child's copy: the child must not wait on them."""
    out = check(run_script(LOCKS_HELD_AT_FORK, server_process.base_url))
    assert "child status 0" in out
