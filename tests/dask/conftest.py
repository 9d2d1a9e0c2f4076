"""Fixtures of the Dask suite (marker ``dask``): a real ``distributed.LocalCluster`` whose
workers are separate processes, all bound to loopback.

Every test collected here carries the ``dask`` marker, so the default run leaves the suite
out; ``.ci/stages/50-dask.sh`` installs the extra and runs ``pytest -m dask``.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

import pytest

try:
    import distributed  # noqa: F401
except ImportError:  # the default environment has no Dask: nothing here to collect
    collect_ignore_glob = ["test_*.py"]

HERE = pathlib.Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.dask)


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


@pytest.fixture(scope="session")
def dask_client() -> Iterator[object]:
    """A 2-process cluster shared by the tests that kill nothing."""
    with local_cluster(2) as client:
        yield client


def synthetic_urls(count: int, start: int = 0, suffix: str = "") -> list[str]:
    """URLs on a name nobody answers: the synthetic server never fetches them."""
    return [f"https://synthetic.riptide.test/page/{i}{suffix}" for i in range(start, start + count)]
