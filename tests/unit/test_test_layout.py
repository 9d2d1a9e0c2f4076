"""The suite's own layout: tests/ has no __init__.py, so pytest imports each test module by
its file name alone, and two modules of one name in different folders break collection
(``import file mismatch``) whenever both are selected, as in ``pytest -m dask``."""

from __future__ import annotations

import collections
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_test_module_names_are_unique():
    by_name = collections.defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        by_name[path.name].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}
