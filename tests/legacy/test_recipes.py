"""Every recipe in examples/recipes/ runs to completion against the local server it starts
itself, and prints the line that proves it did its job."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

RECIPES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "recipes"

# recipe -> (the module it needs, the proof line it prints)
EXPECTED = {
    "celery_task.py": ("celery", "celery: 8 pages crawled, 8 rows stored, 8 with text"),
    "flask_stream.py": ("flask", "flask: 8 results streamed, summary {'done': 8}, bad input -> HTTP 400"),
    "thread_fanout.py": ("concurrent.futures", "fan-out: 64 crawls over 16 threads, 8 distinct pages, all ok: True"),
    "gevent_crawl.py": ("gevent", "gevent: 4 streams in greenlets, results ok: [8, 8, 8, 8]"),
}


def test_recipes_all_listed():
    scripts = {p.name for p in RECIPES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_runs(name):
    module, proof = EXPECTED[name]
    pytest.importorskip(module)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPTIDE_")}
    env["PYTHONWARNINGS"] = "error"
    proc = subprocess.run([sys.executable, name], cwd=RECIPES, capture_output=True, text=True,
                          timeout=90, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proof in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
