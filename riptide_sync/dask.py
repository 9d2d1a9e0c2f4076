"""Crawl any number of URLs on a Dask cluster, each URL exactly once (extra ``[dask]``).

Usage::

    from dask.distributed import Client
    from riptide_sync.dask import crawl_bag

    client = Client("tcp://scheduler:8786")         # or Client(LocalCluster(n_workers=4))
    bag = crawl_bag(urls, base_url="http://riptide:8080", checkpoint_dir="/shared/ckpt")
    bag.map(json.dumps).to_textfiles("/shared/out/*.jsonl")    # one JSONL shard per partition

Each partition is one task: :func:`riptide_sync.partition.crawl_partition` streams it
through one :class:`~riptide_sync.RipTideClient` on the worker, with a checkpoint file
under ``checkpoint_dir``. When Dask runs a partition again (its worker died), the new run
crawls only what the checkpoint lacks. Only this glue is Dask's: the partition function is
engine-neutral (the README has the Ray Data and Spark versions).
"""

from __future__ import annotations

import operator
import os
from typing import Any, Mapping, Sequence

try:
    import dask
    import dask.bag
    from dask.bag import Bag
    from dask.base import tokenize
    from dask.delayed import Delayed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"riptide_sync.dask needs Dask: pip install 'riptide-sync[dask]' ({exc})"
    ) from exc

from .exceptions import ValidationError
from .models import CrawlOptions
from .partition import PartitionSettings, crawl_partition

__all__ = ["crawl_bag"]


def crawl_bag(
    urls: Sequence[str] | Bag,
    *,
    base_url: str,
    checkpoint_dir: str | os.PathLike[str],
    partition_size: int = 1000,
    transport: str = "websocket",
    client_options: Mapping[str, Any] | None = None,
    options: CrawlOptions | Mapping[str, Any] | None = None,
) -> Bag:
    """A lazy Dask Bag of ``{"index", "url", "result"}`` dicts, one per URL of ``urls``.

    Args:
        urls: a list (or tuple) of URL strings, or a ``dask.bag.Bag`` of them.
        base_url: the RipTide server (or load balancer) every worker crawls through.
        checkpoint_dir: a directory every worker can reach (made absolute here); one
            checkpoint file per partition. Delete it to start afresh.
        partition_size: URLs per partition (per task, per client) for a list. A Bag keeps
            its own partitions: ``repartition()`` it first for more or fewer tasks.
        transport: ``"websocket"`` (default), ``"ndjson"`` or ``"sse"``.
        client_options: keyword arguments of :class:`~riptide_sync.RipTideClient` on each
            worker (``api_key``, ``retry``, ``parallel``, ``timeout``...); must pickle.
        options: crawl options for every request (:class:`~riptide_sync.CrawlOptions` or
            a dict of its fields), or None.

    Returns:
        A Bag whose items are ``{"index": <position in urls>, "url": ..., "result": <wire
        result dict>}``, each index exactly once, in index order within a partition.
        Nothing is crawled until it is computed.

    Raises:
        ValidationError, ConfigError: bad arguments (a bare string, an empty list, a bad
            URL in a list, an unknown client option...), before anything is computed. A
            bad URL inside a Bag is reported by its partition's task, named by index.

    When computed, a partition that ends with URLs missing raises
    :class:`~riptide_sync.exceptions.IncompleteStreamError` naming them (global indices);
    what the other partitions delivered stays checkpointed.
    """
    settings = PartitionSettings(
        base_url,
        checkpoint_dir,
        transport=transport,
        client_options=client_options,
        options=options,
    )
    if type(partition_size) is not int or partition_size < 1:
        raise ValidationError(
            f"partition_size must be an int >= 1, got {partition_size!r}",
            field="partition_size",
            value=partition_size,
        )
    if isinstance(urls, Bag):
        return _crawl_bag_of_urls(urls, settings)
    from .protocol.urls import validate_urls

    url_list = validate_urls(urls)
    token = tokenize(url_list, partition_size, settings)
    name = f"riptide-crawl-{token}"
    parts = [
        dask.delayed(_crawl_slice, pure=True)(
            url_list[start : start + partition_size],
            start,
            settings,
            dask_key_name=(name, number),
        )
        for number, start in enumerate(range(0, len(url_list), partition_size))
    ]
    return dask.bag.from_delayed(parts)


def _crawl_bag_of_urls(urls: Bag, settings: PartitionSettings) -> Bag:
    """A Bag input: each partition's global offset comes from the lengths of the ones
    before it, computed by Dask in the same graph (one small task per partition and one
    that adds them up); each input partition is one crawl."""
    token = tokenize(urls, settings)
    # A Bag's partition may be a one-shot iterator (after map or filter): make it a list
    # once, so that counting it and crawling it see the same URLs.
    parts: list[Delayed] = [
        dask.delayed(list, pure=True)(part, dask_key_name=(f"riptide-urls-{token}", n))
        for n, part in enumerate(urls.to_delayed())
    ]
    lengths = [
        dask.delayed(_length, pure=True)(part, dask_key_name=(f"riptide-length-{token}", n))
        for n, part in enumerate(parts)
    ]
    offsets = dask.delayed(_offsets, pure=True)(lengths, dask_key_name=f"riptide-offsets-{token}")
    crawled = [
        dask.delayed(_crawl_slice, pure=True)(
            part,
            dask.delayed(operator.getitem, pure=True)(
                offsets, n, dask_key_name=(f"riptide-offset-{token}", n)
            ),
            settings,
            dask_key_name=(f"riptide-crawl-{token}", n),
        )
        for n, part in enumerate(parts)
    ]
    return dask.bag.from_delayed(crawled)


def _crawl_slice(urls: Sequence[str], start: int, settings: PartitionSettings) -> list[dict[str, Any]]:
    """One task: crawl one partition (a function of its own so the task reads well in
    Dask's dashboard and logs)."""
    return crawl_partition(urls, start=start, settings=settings)


def _length(part: Sequence[Any]) -> int:
    return len(part)


def _offsets(lengths: Sequence[int]) -> list[int]:
    offsets, total = [], 0
    for length in lengths:
        offsets.append(total)
        total += length
    return offsets
