"""Throughput of ``riptide_sync.dask.crawl_bag`` with 1 and 2 Dask worker processes.

    python -m benchmarks.dask_scale [--urls 20000] [--doc-size 4096] [--rounds 3]
    python -m benchmarks.dask_scale --single     # one process: what the checkpoint costs

The local server runs in its own process in synthetic mode (no fetching) on 127.0.0.1; a
``LocalCluster`` of W worker processes (one thread each) crawls ``--urls`` URLs in
partitions of ``--partition-size`` over WebSocket, each round with fresh checkpoints. A
round is timed from compute to the last partition's count (the rows stay on the workers,
as when they are written out by Dask). Printed per worker count, medians over the rounds
(min-max): results/s, and the CPU each side used per wall second (1.0 = one core busy),
read from /proc through psutil: the server's, the workers' and the driver's (scheduler),
and the CPU microseconds each side spent per result (what a core can do, load aside).
Needs the extras [dask] and [server].

``--single`` measures, in this process and without Dask, the CPU per result of a plain
stream and of ``crawl_partition`` (stream + checkpoint), and the partition loop's
results/s with and without the checkpoint's syncs to disk (medians of the rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

import psutil
from dask.distributed import Client, LocalCluster

from benchmarks._process import background, free_port
from riptide_sync import RipTideClient
from riptide_sync.dask import crawl_bag
from riptide_sync.partition import PartitionSettings, crawl_partition


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def one_round(client: Client, base_url: str, urls: list[str], partition_size: int,
              server_pid: int, worker_pids: list[int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as checkpoints:
        bag = crawl_bag(urls, base_url=base_url, checkpoint_dir=checkpoints, partition_size=partition_size)
        before = (cpu_seconds([server_pid]), cpu_seconds(worker_pids), cpu_seconds([os.getpid()]))
        started = time.perf_counter()
        count = bag.count().compute()
        wall = time.perf_counter() - started
        after = (cpu_seconds([server_pid]), cpu_seconds(worker_pids), cpu_seconds([os.getpid()]))
    assert count == len(urls), count
    server, workers, driver = (b - a for a, b in zip(before, after))
    return {"results_per_s": len(urls) / wall, "wall_s": wall, "server_cores": server / wall,
            "workers_cores": workers / wall, "driver_cores": driver / wall,
            "server_share": server / (server + workers + driver),
            "server_us_per_result": server / len(urls) * 1e6, "workers_us_per_result": workers / len(urls) * 1e6}


def single_process(base_url: str, urls: list[str], partition_size: int, rounds: int) -> None:
    """The checkpoint's cost in one process: CPU per result, and the syncs' share."""
    real_fsync = os.fsync
    costs: dict[str, list[float]] = {"stream_us": [], "partition_us": [], "synced_per_s": [],
                                     "unsynced_per_s": []}

    def partitions() -> float:
        with tempfile.TemporaryDirectory() as checkpoints:
            settings = PartitionSettings(base_url, checkpoints)
            started = time.perf_counter()
            for start in range(0, len(urls), partition_size):
                crawl_partition(urls[start:start + partition_size], start=start, settings=settings)
            return time.perf_counter() - started

    partitions()  # warm-up
    for _ in range(rounds):
        with RipTideClient(base_url) as client:
            cpu = time.process_time()
            results = sum(1 for e in client.streaming.crawl_websocket(urls) if e.event_type == "result")
            costs["stream_us"].append((time.process_time() - cpu) / results * 1e6)
        cpu = time.process_time()
        costs["synced_per_s"].append(len(urls) / partitions())
        costs["partition_us"].append((time.process_time() - cpu) / len(urls) * 1e6)
        os.fsync = lambda fd: None  # type: ignore[assignment]
        try:
            costs["unsynced_per_s"].append(len(urls) / partitions())
        finally:
            os.fsync = real_fsync
    median = {key: statistics.median(values) for key, values in costs.items()}
    print(f"one process: CPU per result {median['stream_us']:.0f} us (plain stream), "
          f"{median['partition_us']:.0f} us (crawl_partition, checkpointed); partition loop "
          f"{median['synced_per_s']:,.0f} results/s, {median['unsynced_per_s']:,.0f} with the syncs skipped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--urls", type=int, default=20000)
    parser.add_argument("--doc-size", type=int, default=4096, help="bytes of text per synthetic result")
    parser.add_argument("--partition-size", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", action="store_true", help="one process, no Dask: the checkpoint's cost")
    args = parser.parse_args(argv)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "riptide_sync", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--synthetic-size", str(args.doc_size)]
    urls = [f"https://synthetic.riptide.test/page/{i}" for i in range(args.urls)]
    report: dict[str, object] = {"urls": args.urls, "doc_size": args.doc_size, "cpus": os.cpu_count(),
                                 "loadavg_before": os.getloadavg(), "by_workers": {}}
    with background(cmd, lambda: urllib.request.urlopen(base_url + "/healthz", timeout=1).close()) as server:
        if args.single:
            single_process(base_url, urls[:10000], args.partition_size, args.rounds)
            return 0
        for workers in [int(w) for w in args.workers.split(",")]:
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
                worker_pids = list(client.run(os.getpid).values())
                one_round(client, base_url, urls[: args.partition_size], args.partition_size,
                          server.pid, worker_pids)  # warm-up: imports, first connections
                rounds = [one_round(client, base_url, urls, args.partition_size, server.pid, worker_pids)
                          for _ in range(args.rounds)]
            summary = {key: {"median": statistics.median(r[key] for r in rounds),
                             "min": min(r[key] for r in rounds), "max": max(r[key] for r in rounds)}
                       for key in rounds[0]}
            report["by_workers"][workers] = summary  # type: ignore[index]
            print(f"{workers} worker(s): {summary['results_per_s']['median']:,.0f} results/s "
                  f"({summary['results_per_s']['min']:,.0f}-{summary['results_per_s']['max']:,.0f}); "
                  f"server {summary['server_cores']['median']:.2f} cores "
                  f"({summary['server_share']['median']:.0%} of the CPU used), workers "
                  f"{summary['workers_cores']['median']:.2f}, driver {summary['driver_cores']['median']:.2f}; "
                  f"CPU per result: workers {summary['workers_us_per_result']['median']:.0f} us, "
                  f"server {summary['server_us_per_result']['median']:.0f} us",
                  flush=True)
    report["loadavg_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
