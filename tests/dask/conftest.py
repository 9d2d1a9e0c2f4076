"""Fixtures of the Dask suite (marker ``dask``): a real ``distributed.LocalCluster`` whose
workers are separate processes, all bound to loopback.

Every test collected here carries the ``dask`` marker, so the default run leaves the suite
out; ``.ci/stages/50-dask.sh`` installs the extra and runs ``pytest -m dask``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from dask_helpers import local_cluster

try:
    import distributed  # noqa: F401
except ImportError:  # the default environment has no Dask: nothing here to collect
    collect_ignore_glob = ["test_*.py"]

HERE = pathlib.Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.dask)
            # distributed's own comms (scheduler and nanny sockets in this process) are at
            # times garbage-collected unclosed while a LocalCluster shuts down, and the
            # suite turns that ResourceWarning into a failure of whichever test is running.
            # The client's own sockets are held to "nothing left open" by the default suite.
            item.add_marker(pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"))


@pytest.fixture(scope="session")
def dask_client() -> Iterator[object]:
    """A 2-process cluster shared by the tests that kill nothing."""
    with local_cluster(2) as client:
        yield client
