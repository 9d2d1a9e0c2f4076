"""riptide_sync.dask.crawl_bag on a real LocalCluster with worker processes (issue 14).

The server runs in this process (synthetic mode: nothing is fetched) on loopback; the
workers are separate processes that crawl it over loopback, one RipTideClient per
partition, with checkpoint files under a temporary directory.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import signal
import time

import pytest
from dask_helpers import local_cluster, synthetic_urls

from riptide_sync import AuthenticationError, IncompleteStreamError, RetryPolicy, ValidationError
from riptide_sync.server import Faults

pytestmark = pytest.mark.dask

dask_bag = pytest.importorskip("dask.bag")
from riptide_sync.dask import crawl_bag  # noqa: E402

FAST_RETRY = RetryPolicy(max_attempts=2, initial_backoff=0.05, jitter=0.0)


def crawled(server):
    """How often the server was asked for each URL (accepted requests only)."""
    return collections.Counter(url for entry in server.request_log if entry.accepted for url in entry.urls)


def valid_lines(path):
    """A checkpoint file's valid lines: local index -> how many lines it has."""
    counts = collections.Counter()
    for line in pathlib.Path(path).read_bytes().split(b"\n"):
        try:
            counts[json.loads(line)["index"]] += 1
        except ValueError:
            continue
    return counts


def read_jsonl_shards(directory):
    rows = []
    for shard in sorted(pathlib.Path(directory).glob("*.jsonl")):
        rows.extend(json.loads(line) for line in shard.read_text().splitlines() if line)
    return rows


def test_crawl_bag_each_index_once_in_bag_and_output(dask_client, make_server, tmp_path):
    """5,000 URLs on 2 worker processes: each index once in the bag and in the JSONL
    shards written by Dask, and the server asked for each URL once."""
    server = make_server(synthetic_doc_size=256)
    urls = synthetic_urls(5000)
    bag = crawl_bag(urls, base_url=server.base_url, checkpoint_dir=tmp_path / "ckpt", partition_size=1000)
    assert bag.npartitions == 5

    bag.map(json.dumps).to_textfiles(str(tmp_path / "out" / "*.jsonl"))
    written = read_jsonl_shards(tmp_path / "out")
    assert sorted(row["index"] for row in written) == list(range(5000))
    assert all(row["url"] == urls[row["index"]] == row["result"]["url"] for row in written)
    assert set(crawled(server).values()) == {1} and len(crawled(server)) == 5000

    # Computing again reads the checkpoints: the same rows, nothing sent.
    asked = len(server.request_log)
    rows = bag.compute()
    assert [row["index"] for row in rows] == list(range(5000))
    assert len(server.request_log) == asked
    assert len(set(dask_client.run(os.getpid).values())) == 2  # two worker processes


def test_crawl_bag_worker_killed_mid_crawl(make_server, tmp_path):
    """SIGKILL a worker process mid-partition: the job completes, each index once (bag and
    shards), and the only URLs crawled again are ones without a checkpointed result."""
    # Slow messages (2 ms each) so that the kill lands mid-partition.
    server = make_server(synthetic_doc_size=256, faults=Faults(send_delay=0.002))
    urls = synthetic_urls(5000)
    checkpoints = tmp_path / "ckpt"

    def lines_of(partition):
        paths = list(checkpoints.glob(f"part-{partition * 500:010d}-*.jsonl"))
        return valid_lines(paths[0]) if paths else collections.Counter()

    with local_cluster(2) as client:
        bag = client.persist(crawl_bag(urls, base_url=server.base_url, checkpoint_dir=checkpoints,
                                       partition_size=500))
        writes = client.compute(bag.map(json.dumps).to_textfiles(str(tmp_path / "out" / "*.jsonl"),
                                                                  compute=False))
        victim = None
        deadline = time.monotonic() + 60
        while victim is None:
            assert time.monotonic() < deadline, "no partition was half done in time"
            for address, keys in client.processing().items():
                for key in keys:
                    if isinstance(key, tuple) and str(key[0]).startswith("riptide-crawl-"):
                        if 100 <= len(lines_of(key[1])) <= 400:
                            victim, partition = address, key[1]
            time.sleep(0.005)
        pid = client.run(os.getpid, workers=[victim])[victim]
        # Results checkpointed before the kill (the dead run may add a few more before it
        # dies: those are not counted here, and may rightly be crawled again).
        checkpointed = set(lines_of(partition))
        os.kill(pid, signal.SIGKILL)
        assert len(checkpointed) < 500

        rows = client.compute(bag).result(timeout=120)
        client.gather(writes)

    assert [row["index"] for row in rows] == list(range(5000))
    assert sorted(row["index"] for row in read_jsonl_shards(tmp_path / "out")) == list(range(5000))
    asked = crawled(server)
    assert set(asked) == set(urls)
    again = {url for url, count in asked.items() if count > 1}
    # Only the killed partition was crawled again, and only its URLs without a result in
    # its checkpoint: fewer than the partition, none with a line (had one been crawled
    # again, the rerun would have appended a second line for it).
    victim_urls = urls[partition * 500:(partition + 1) * 500]
    assert again, "the kill interrupted nothing: no URL was crawled again"
    assert again <= {url for i, url in enumerate(victim_urls) if i not in checkpointed}
    assert len(again) <= 500 - len(checkpointed)
    for path in checkpoints.glob("*.jsonl"):
        assert set(valid_lines(path).values()) == {1}, path.name
    assert sum(len(valid_lines(p)) for p in checkpoints.glob("*.jsonl")) == 5000


def test_crawl_bag_refused_partition_names_its_urls(dask_client, make_server, tmp_path):
    """A partition whose URLs the server always refuses (a .exe suffix) fails the job with
    IncompleteStreamError naming them by global index; the others stay checkpointed."""
    server = make_server(synthetic_doc_size=64)
    refused = synthetic_urls(100, start=100, suffix=".exe")
    urls = synthetic_urls(100) + refused + synthetic_urls(100, start=200)
    bag = crawl_bag(urls, base_url=server.base_url, checkpoint_dir=tmp_path, partition_size=100,
                    client_options={"retry": FAST_RETRY})
    with pytest.raises(IncompleteStreamError) as caught:
        bag.compute()
    assert caught.value.missing == refused
    assert caught.value.missing_indices == list(range(100, 200))
    assert "from index 100" in str(caught.value) and refused[0] in str(caught.value)
    assert not any(url in refused for url in crawled(server))  # refused, never accepted


def test_crawl_bag_of_a_bag_has_global_indices(dask_client, make_server, tmp_path):
    """A Bag input (uneven partitions, one empty): indices are positions in the Bag's
    order, from partition lengths computed by Dask."""
    server = make_server(synthetic_doc_size=64)
    urls = synthetic_urls(700)
    source = dask_bag.from_sequence(urls, npartitions=6).filter(lambda url: not url.endswith(("/3", "/4")))
    # An empty partition in the middle, and partitions of uneven lengths.
    source = dask_bag.concat([source, dask_bag.from_sequence([], npartitions=1), source.map(lambda u: u + "?again")])
    expected = source.compute()
    rows = crawl_bag(source, base_url=server.base_url, checkpoint_dir=tmp_path).compute()
    assert [row["index"] for row in rows] == list(range(len(expected)))
    assert [row["url"] for row in rows] == expected


def test_crawl_bag_rejects_bad_input_before_computing(tmp_path):
    """Bad arguments fail at once, naming the value; nothing is built or sent."""
    base = "http://127.0.0.1:1"
    with pytest.raises(ValidationError, match="single string"):
        crawl_bag("https://a.test/", base_url=base, checkpoint_dir=tmp_path)
    with pytest.raises(ValidationError, match="urls is empty"):
        crawl_bag([], base_url=base, checkpoint_dir=tmp_path)
    with pytest.raises(ValidationError, match=r"urls\[1\] = 'a.test'"):
        crawl_bag(["https://a.test/", "a.test"], base_url=base, checkpoint_dir=tmp_path)
    with pytest.raises(ValidationError, match="partition_size must be an int >= 1, got 0"):
        crawl_bag(["https://a.test/"], base_url=base, checkpoint_dir=tmp_path, partition_size=0)
    with pytest.raises(ValidationError, match="transport must be one of"):
        crawl_bag(["https://a.test/"], base_url=base, checkpoint_dir=tmp_path, transport="ws")


def test_crawl_bag_transports_agree(dask_client, make_server, tmp_path):
    """NDJSON and SSE partitions give the same rows as WebSocket ones."""
    server = make_server(synthetic_doc_size=64)
    urls = synthetic_urls(300)
    for transport in ("ndjson", "sse"):
        rows = crawl_bag(urls, base_url=server.base_url, checkpoint_dir=tmp_path / transport,
                         partition_size=120, transport=transport).compute()
        assert [row["index"] for row in rows] == list(range(300)), transport
    assert {entry.transport for entry in server.request_log} == {"ndjson", "sse"}


def test_crawl_bag_keeps_the_api_key_out_of_logs(dask_client, make_server, tmp_path):
    """A failing task is logged by Dask with its arguments: the API key is not there."""
    server = make_server(synthetic_doc_size=64, api_keys=("the-right-key",))
    secret = "sk-wrong-but-secret-7f3a"
    bag = crawl_bag(synthetic_urls(20), base_url=server.base_url, checkpoint_dir=tmp_path,
                    client_options={"api_key": secret, "retry": None})
    with pytest.raises(AuthenticationError):
        bag.compute()
    logs = json.dumps([dask_client.get_worker_logs(), dask_client.get_scheduler_logs()], default=str)
    assert "Compute Failed" in logs  # the failure was logged, arguments included...
    assert secret not in logs  # ...but not the key
    assert secret not in repr(bag.dask)
