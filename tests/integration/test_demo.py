"""``riptide-sync demo``, the README's main job, run as a user would."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("transport", ["ws", "ndjson"])
def test_demo_crawls_every_demo_page(transport):
    """The demo exits 0, shows one line per demo page and a summary covering all 36."""
    proc = subprocess.run(
        [sys.executable, "-m", "riptide_sync", "demo", "--transport", transport],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "/demo/" in line and line.split()[0].isdigit()]
    assert len(lines) == 36
    assert "summary: 36 succeeded, 0 failed of 36" in proc.stderr
    assert "Traceback" not in proc.stderr
