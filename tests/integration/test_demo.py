"""``riptide-sync demo``, the README's main job, run as a user would."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("transport", ["ws", "ndjson"])
def test_demo_crawls_every_demo_page(transport):
    """The demo exits 0, shows one line per demo page and a summary covering all 36: the
    404 page fails, as on the real server."""
    proc = subprocess.run(
        [sys.executable, "-m", "riptide_sync", "demo", "--transport", transport],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "/demo/" in line and line.split()[0].isdigit()]
    assert len(lines) == 36
    assert "summary: 35 succeeded, 1 failed of 36" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_list_urls_prints_every_demo_page(capsys):
    """--list-urls prints the 36 demo page URLs, one per line, under the reserved host every
    local server resolves itself (any base URL given is accepted and ignored)."""
    from riptide_sync.cli import main

    assert main(["demo", "--list-urls", "http://127.0.0.1:9999"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 36 and lines[0] == "http://demo.riptide.test/demo/"
    assert main(["demo", "--list-urls"]) == 0
    assert capsys.readouterr().out.startswith("http://demo.riptide.test/demo/")
