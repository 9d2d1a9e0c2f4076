"""Crawl 2,000 URLs on a Dask cluster, each exactly once, and write JSONL shards and Parquet.

A LocalCluster of 2 worker processes stands in for a real cluster (the same code runs with
``Client("tcp://scheduler:8786")``); with no $RIPTIDE_BASE_URL the bundled local server is
started here in synthetic mode (no fetching), so the example runs offline. Needs the
extras [dask] and [server], plus pandas and pyarrow for the Parquet part.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import pandas as pd
from _local import riptide_server
from dask.distributed import Client, LocalCluster

from riptide_sync.dask import crawl_bag


def main() -> None:
    with riptide_server(synthetic_doc_size=512) as (base_url, given), \
            tempfile.TemporaryDirectory() as work, \
            LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster):
        if os.environ.get("RIPTIDE_BASE_URL"):
            urls = given  # a real server: crawl the URLs you gave it
        else:  # synthetic mode answers for any URL without fetching it
            urls = [f"https://synthetic.riptide.test/page/{i}" for i in range(2000)]

        bag = crawl_bag(urls, base_url=base_url, checkpoint_dir=f"{work}/checkpoints",
                        partition_size=500).persist()  # crawled once, written twice

        # One JSON Lines shard per partition:
        bag.map(json.dumps).to_textfiles(f"{work}/jsonl/*.jsonl")
        # Parquet: the result as a JSON string keeps one schema across partitions.
        bag.map(lambda row: {**row, "result": json.dumps(row["result"])}).to_dataframe(
            meta={"index": "int64", "url": "str", "result": "str"}).to_parquet(f"{work}/parquet")

        shards = sorted(pathlib.Path(work, "jsonl").glob("*.jsonl"))
        lines = [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]
        table = pd.read_parquet(f"{work}/parquet")
        once = sorted(row["index"] for row in lines) == sorted(table["index"]) == list(range(len(urls)))
        ok = sum(1 for row in lines if row["result"].get("error") is None)
        print(f"{len(lines)} rows in {len(shards)} JSONL shards, {len(table)} rows in Parquet, "
              f"{ok} ok; each index once: {once}")


if __name__ == "__main__":  # worker processes import this file: keep the work in main()
    main()
