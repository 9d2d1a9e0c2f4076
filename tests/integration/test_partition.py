"""One partition of a scaled-out crawl (riptide_sync.partition), without any engine.

The engine-neutral core of issue 14: global indices, resume from the partition's
checkpoint (also after a run killed mid-write), clear errors, no secret in a repr.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import subprocess
import sys
import threading

import pytest

from riptide_sync import IncompleteStreamError, RetryPolicy, ValidationError, partition
from riptide_sync._checkpoint import Checkpoint
from riptide_sync.exceptions import ConfigError
from riptide_sync.partition import PartitionSettings, checkpoint_path, crawl_partition
from riptide_sync.server import Faults


def synthetic_urls(count, start=0, prefix="page"):
    # Synthetic mode never fetches; the name is never contacted.
    return [f"https://synthetic.riptide.test/{prefix}/{i}" for i in range(start, start + count)]


@pytest.fixture
def synthetic(make_server):
    return make_server(synthetic_doc_size=64)


def crawled_urls(server):
    """Every URL the server was asked for, with how often."""
    return collections.Counter(url for entry in server.request_log if entry.accepted for url in entry.urls)


def checkpoint_lines(path):
    """The valid checkpoint lines of a file, by local index (a list per index)."""
    by_index = collections.defaultdict(list)
    for line in pathlib.Path(path).read_bytes().split(b"\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        by_index[entry["index"]].append(entry)
    return by_index


def test_partition_rows_carry_global_indices(synthetic, tmp_path):
    """Each URL comes back once, with its index in the whole list, in order."""
    urls = synthetic_urls(250, start=5000)
    settings = PartitionSettings(synthetic.base_url, tmp_path)
    rows = crawl_partition(urls, start=5000, settings=settings)
    assert [row["index"] for row in rows] == list(range(5000, 5250))
    assert [row["url"] for row in rows] == urls
    assert all(row["result"]["url"] == row["url"] for row in rows)
    assert set(crawled_urls(synthetic).values()) == {1}


def test_partition_explicit_indices(synthetic, tmp_path):
    """``indices=`` gives any partitioning its global positions (e.g. a Ray batch)."""
    urls = synthetic_urls(3)
    rows = crawl_partition(urls, indices=[7, 2, 40], settings=PartitionSettings(synthetic.base_url, tmp_path))
    assert [(row["index"], row["url"]) for row in rows] == [(2, urls[1]), (7, urls[0]), (40, urls[2])]


def test_partition_rerun_reads_checkpoint_only(synthetic, tmp_path):
    """A second run of a finished partition sends nothing and returns the same rows."""
    urls = synthetic_urls(300)
    settings = PartitionSettings(synthetic.base_url, tmp_path)
    first = crawl_partition(urls, start=0, settings=settings)
    asked = len(synthetic.request_log)
    again = crawl_partition(urls, start=0, settings=settings)
    assert again == first
    assert len(synthetic.request_log) == asked


def test_partition_resumes_after_a_run_killed_mid_write(synthetic, tmp_path):
    """A checkpoint cut in the middle of a line (the worker died while writing it):
    the rerun crawls exactly the URLs without a complete line, each index once."""
    urls = synthetic_urls(400)
    settings = PartitionSettings(synthetic.base_url, tmp_path)
    crawl_partition(urls, start=0, settings=settings)
    path = checkpoint_path(settings.checkpoint_dir, range(400), urls)
    lines = pathlib.Path(path).read_bytes().splitlines(keepends=True)
    kept = lines[:137]
    done = {json.loads(line)["index"] for line in kept}
    pathlib.Path(path).write_bytes(b"".join(kept) + lines[137][: len(lines[137]) // 2])
    synthetic.clear_request_log()

    rows = crawl_partition(urls, start=0, settings=settings)

    assert [row["index"] for row in rows] == list(range(400))
    again = crawled_urls(synthetic)
    assert set(again) == {url for i, url in enumerate(urls) if i not in done}
    assert set(again.values()) == {1}
    by_index = checkpoint_lines(path)
    assert sorted(by_index) == list(range(400))
    assert {len(entries) for entries in by_index.values()} == {1}


def test_partition_resumes_after_a_torn_line_of_undecodable_bytes(synthetic, tmp_path):
    """A torn last line that is not even UTF-8 (a crash left junk) costs only itself:
    the rest of the checkpoint is still read."""
    urls = synthetic_urls(50)
    settings = PartitionSettings(synthetic.base_url, tmp_path)
    crawl_partition(urls, start=0, settings=settings)
    path = checkpoint_path(settings.checkpoint_dir, range(50), urls)
    lines = pathlib.Path(path).read_bytes().splitlines(keepends=True)
    pathlib.Path(path).write_bytes(b"".join(lines[:20]) + b'{"index": 20, "url": "\xff\xfe\xc3')
    synthetic.clear_request_log()

    rows = crawl_partition(urls, start=0, settings=settings)

    assert [row["index"] for row in rows] == list(range(50))
    assert set(crawled_urls(synthetic)) == set(urls[20:])


def test_partition_refused_urls_are_named_with_global_indices(synthetic, tmp_path):
    """URLs the server always refuses: IncompleteStreamError names them, global indices."""
    # The server refuses a suspicious file extension, whatever else is configured.
    urls = synthetic_urls(5, start=900, prefix="setup")
    urls = [url + ".exe" for url in urls]
    settings = PartitionSettings(synthetic.base_url, tmp_path, client_options={"retry": 2})
    with pytest.raises(IncompleteStreamError) as caught:
        crawl_partition(urls, start=900, settings=settings)
    assert caught.value.missing == urls
    assert caught.value.missing_indices == list(range(900, 905))
    assert "from index 900" in str(caught.value)
    assert urls[0] in str(caught.value)


def test_partition_runs_at_once_crawl_each_url_once(make_server, tmp_path):
    """Three runs of one partition at the same time (two threads here, one other
    process), as when an engine starts a partition again while an earlier run still
    lives: each returns every row, and the server is asked for each URL once."""
    server = make_server(synthetic_doc_size=64, faults=Faults(send_delay=0.002))
    urls = synthetic_urls(300, start=100)
    settings = PartitionSettings(server.base_url, tmp_path)
    code = (
        "import sys, json; from riptide_sync.partition import PartitionSettings, crawl_partition; "
        "urls = json.loads(sys.argv[3]); "
        "rows = crawl_partition(urls, start=100, settings=PartitionSettings(sys.argv[1], sys.argv[2])); "
        "print(json.dumps([row['index'] for row in rows]))"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code, server.base_url, str(tmp_path), json.dumps(urls)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    results = []
    threads = [threading.Thread(target=lambda: results.append(crawl_partition(urls, start=100, settings=settings)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    assert json.loads(out) == list(range(100, 400))
    assert len(results) == 2 and all([row["index"] for row in rows] == list(range(100, 400)) for rows in results)
    assert crawled_urls(server) == collections.Counter(urls)
    assert partition._local_locks == {}  # the in-process locks are forgotten after use


def test_partition_bad_url_named_before_any_request(synthetic, tmp_path):
    """A bad URL is named with its global index, and nothing is sent."""
    urls = synthetic_urls(3) + ["ftp://synthetic.riptide.test/x"]
    with pytest.raises(ValidationError, match=r"urls\[1003\] = 'ftp://"):
        crawl_partition(urls, start=1000, settings=PartitionSettings(synthetic.base_url, tmp_path))
    assert synthetic.request_log == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"transport": "grpc"}, ValidationError, "transport must be one of websocket, ndjson, sse, got 'grpc'"),
        ({"client_options": {"apikey": "x"}}, ValidationError, "unknown key.*'apikey'"),
        ({"client_options": {"base_url": "http://x"}}, ValidationError, "unknown key.*'base_url'"),
        ({"client_options": {"parallel": 0}}, ConfigError, "parallel"),
        ({"client_options": ["api_key"]}, ValidationError, "client_options must be a dict"),
        ({"options": {"concurency": 3}}, ValidationError, "concurency"),
    ],
)
def test_partition_settings_reject_bad_values(tmp_path, kwargs, error, match):
    """Bad settings fail where the job is built, naming the value."""
    with pytest.raises(error, match=match):
        PartitionSettings("http://127.0.0.1:1", tmp_path, **kwargs)


def test_partition_settings_reject_bad_places(tmp_path):
    """A base URL or checkpoint directory that cannot work is refused up front."""
    with pytest.raises(ConfigError, match="'riptide:8080'"):
        PartitionSettings("riptide:8080", tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationError, match="exists and is not a directory"):
        PartitionSettings("http://127.0.0.1:1", tmp_path / "file")
    with pytest.raises(ValidationError, match="checkpoint_dir must be a directory path, got 3"):
        PartitionSettings("http://127.0.0.1:1", 3)


def test_partition_settings_hide_the_api_key(tmp_path):
    """Engines log a failed task's arguments: the settings' repr never shows the key."""
    settings = PartitionSettings(
        "http://127.0.0.1:1", tmp_path, client_options={"api_key": "sk-live-123", "retry": RetryPolicy()}
    )
    assert "sk-live-123" not in repr(settings)
    assert "'api_key': '***'" in repr(settings)
    assert "sk-live-123" not in repr(settings.__dask_tokenize__())
    other = PartitionSettings("http://127.0.0.1:1", tmp_path, client_options={"api_key": "sk-live-456"})
    assert settings.__dask_tokenize__() != other.__dask_tokenize__()


def test_partition_settings_take_the_api_key_from_where_the_job_is_built(make_server, tmp_path, monkeypatch):
    """$RIPTIDE_API_KEY is read where the job is built: the workers of a remote cluster
    (here: the environment without it) still send it."""
    server = make_server(synthetic_doc_size=64, api_keys=("key-of-the-driver",))
    monkeypatch.setenv("RIPTIDE_API_KEY", "key-of-the-driver")
    settings = PartitionSettings(server.base_url, tmp_path)
    monkeypatch.delenv("RIPTIDE_API_KEY")
    rows = crawl_partition(synthetic_urls(5), settings=settings)
    assert len(rows) == 5
    assert "key-of-the-driver" not in repr(settings)


def test_partition_empty_sends_nothing(synthetic, tmp_path):
    """An empty partition (Bags may have them) returns no rows and opens no connection."""
    assert crawl_partition([], start=10, settings=PartitionSettings(synthetic.base_url, tmp_path)) == []
    assert synthetic.request_log == []
    assert os.listdir(tmp_path) == []


def test_checkpoint_close_syncs_file_to_disk(tmp_path, monkeypatch):
    """The checkpoint is on disk, not only in the OS cache, once its stream is closed (a
    lost machine's partition resumes from it on another)."""
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = tmp_path / "ckpt.jsonl"
    checkpoint = Checkpoint(path, ["https://a.test/"])
    checkpoint.append(0, {"url": "https://a.test/"})
    checkpoint.close()
    assert path.stat().st_ino in synced


def test_import_riptide_sync_does_not_import_dask():
    """The core client gains no dependency: importing it (and the partition module) loads no Dask."""
    code = "import sys, riptide_sync, riptide_sync.partition; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_checkpoint_round_trips_what_the_wire_can_carry(tmp_path):
    """Non-ASCII text and integers beyond 64 bits come back from the checkpoint as written."""
    urls = ["https://a.test/ü", "https://a.test/big"]
    checkpoint = Checkpoint(tmp_path / "ckpt.jsonl", urls)
    checkpoint.append(0, {"url": urls[0], "document": {"text": "Grüße, 東京 🌊"}})
    checkpoint.append(1, {"url": urls[1], "status": 2**70})
    checkpoint.close()
    assert Checkpoint(tmp_path / "ckpt.jsonl", urls).load() == {
        0: {"url": urls[0], "document": {"text": "Grüße, 東京 🌊"}},
        1: {"url": urls[1], "status": 2**70},
    }
