"""The package passes ``mypy --strict`` (docs/style.md §5), with setup.cfg's [mypy] settings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)  # A cold run (no .mypy_cache) takes ~10-25 s; leave slow CI room.
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy not installed (the dev extra brings it on Python 3.10 and later)")
def test_mypy_strict_passes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "riptide_sync"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"mypy --strict riptide_sync failed:\n{proc.stdout}{proc.stderr}"
