"""Helpers of the Dask suite: a loopback LocalCluster, synthetic URLs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def local_cluster(workers: int = 2) -> Iterator[object]:
    """A LocalCluster of ``workers`` worker processes (one thread each) and a Client."""
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # a free port: 8787 may be taken (warnings are errors)
        worker_dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        yield client


def synthetic_urls(count: int, start: int = 0, suffix: str = "") -> list[str]:
    """URLs on a name nobody answers: the synthetic server never fetches them."""
    return [f"https://synthetic.riptide.test/page/{i}{suffix}" for i in range(start, start + count)]
