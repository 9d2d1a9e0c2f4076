"""The README's Ray Data and Spark recipes: their per-batch and per-partition functions,
taken from the README itself, run on the inputs those engines give them (a pandas batch
with an index column; an iterator of (url, index) pairs from ``zipWithIndex``)."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from dask_helpers import synthetic_urls

from riptide_sync.partition import PartitionSettings, crawl_partition

pytestmark = pytest.mark.dask

pd = pytest.importorskip("pandas")
README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def recipe_functions():
    """``crawl`` (Ray) and ``crawl_rows`` (Spark), defined as the README writes them."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Ray Data and Spark**"):]
    block = section[section.index("```python") + len("```python"):]
    block = block[: block.index("```")]
    functions = re.findall(r"^def .*?(?=^\S)", block, flags=re.S | re.M)
    assert [f.split("(")[0] for f in functions] == ["def crawl", "def crawl_rows"]
    return functions


def test_readme_ray_and_spark_recipes_run(make_server, tmp_path):
    """Each recipe returns every URL once, with its global index, and resumes from the
    same checkpoints as the other (same partition, same file)."""
    server = make_server(synthetic_doc_size=64)
    urls = synthetic_urls(250, start=1000)
    namespace = {"json": json, "pd": pd, "crawl_partition": crawl_partition,
                 "settings": PartitionSettings(server.base_url, tmp_path)}
    for source in recipe_functions():
        exec(source, namespace)  # noqa: S102 - the README's own code

    batch = pd.DataFrame({"index": range(1000, 1250), "url": urls})
    frame = namespace["crawl"](batch)
    assert frame["index"].tolist() == list(range(1000, 1250))
    assert [json.loads(r)["url"] for r in frame["result"]] == urls

    asked = len(server.request_log)
    lines = list(namespace["crawl_rows"](iter(zip(urls, range(1000, 1250)))))
    assert [json.loads(line)["index"] for line in lines] == list(range(1000, 1250))
    assert len(server.request_log) == asked  # the Ray run's checkpoint served it
    assert list(namespace["crawl_rows"](iter(()))) == []
