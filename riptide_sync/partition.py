"""Crawl one partition of a larger URL list: the engine-neutral core of scaling out.

A distributed engine (Dask, Ray Data, Spark) splits the URL list into partitions and runs
:func:`crawl_partition` on each, wherever it likes, as often as it likes: the partition
streams through one :class:`~riptide_sync.RipTideClient` with the SDK's own chunking and
resume, and keeps a checkpoint file (the stream's ``checkpoint=`` format) under a
directory every worker can reach. When the engine runs a partition again (its worker
died, its result was lost), the new run crawls only the URLs without a checkpointed
result and returns every URL of the partition exactly once.

Usage::

    from riptide_sync.partition import PartitionSettings, crawl_partition

    settings = PartitionSettings("http://riptide:8080", "/shared/ckpt")
    rows = crawl_partition(urls[3000:4000], start=3000, settings=settings)
    # [{"index": 3000, "url": ..., "result": {...wire dict...}}, ...] in index order

Nothing here imports an engine; :mod:`riptide_sync.dask` is the Dask glue, and the
README shows the Ray Data and Spark glue.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import threading
import time
from typing import Any, Iterator, Mapping, Sequence

from ._checkpoint import Checkpoint
from .exceptions import IncompleteStreamError, ValidationError
from .models import CrawlOptions, coerce_options
from .protocol.urls import check_each_url, validate_base_url

__all__ = ["PartitionSettings", "crawl_partition", "checkpoint_path", "TRANSPORTS"]

TRANSPORTS = {"websocket": "crawl_websocket", "ndjson": "crawl_ndjson", "sse": "crawl_sse"}
"""Transport names accepted by ``transport=``, and the stream call each one makes."""

_SECRET_OPTIONS = frozenset({"api_key"})

logger = logging.getLogger("riptide_sync.partition")

LOCK_POLL_INTERVAL = 0.1
"""Seconds between two tries at the lock of a partition that another run is crawling."""


class PartitionSettings:
    """What every partition of one crawl shares: server, checkpoints, client and crawl options.

    Validated once where the job is built (before any network I/O), then shipped to the
    workers (it pickles). Its ``repr`` never shows the API key: engines log the arguments
    of a failed task.

    Args:
        base_url: the RipTide server (or load balancer) every worker crawls through.
        checkpoint_dir: a directory every worker can reach (a shared file system); made
            absolute here, created on first use.
        transport: ``"websocket"`` (default), ``"ndjson"`` or ``"sse"``.
        client_options: keyword arguments of :class:`~riptide_sync.RipTideClient`
            (``api_key``, ``retry``, ``parallel``, ``timeout``...), or None. Without an
            ``api_key``, ``$RIPTIDE_API_KEY`` is read here, not on the workers.
        options: the crawl options (a :class:`~riptide_sync.CrawlOptions` or a dict of its
            fields), or None for the server's defaults.

    Raises:
        ConfigError: a bad ``base_url`` or client option (the client's own checks).
        ValidationError: a bad ``checkpoint_dir``, ``transport``, ``client_options`` key
            or crawl option; each message names the value.
    """

    def __init__(
        self,
        base_url: str,
        checkpoint_dir: str | os.PathLike[str],
        *,
        transport: str = "websocket",
        client_options: Mapping[str, Any] | None = None,
        options: CrawlOptions | Mapping[str, Any] | None = None,
    ) -> None:
        from .client import RipTideClient

        base_url = validate_base_url(base_url)
        if isinstance(checkpoint_dir, bytes) or not isinstance(checkpoint_dir, (str, os.PathLike)):
            raise ValidationError(
                f"checkpoint_dir must be a directory path, got {checkpoint_dir!r}",
                field="checkpoint_dir",
                value=checkpoint_dir,
            )
        directory = os.path.abspath(os.fspath(checkpoint_dir))
        if not directory or os.path.exists(directory) and not os.path.isdir(directory):
            raise ValidationError(
                f"checkpoint_dir {directory!r} exists and is not a directory",
                field="checkpoint_dir",
                value=checkpoint_dir,
            )
        if transport not in TRANSPORTS:
            raise ValidationError(
                f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}",
                field="transport",
                value=transport,
            )
        if client_options is None:
            client_options = {}
        if not isinstance(client_options, Mapping):
            raise ValidationError(
                f"client_options must be a dict of RipTideClient keyword arguments or None, "
                f"got {type(client_options).__name__}",
                field="client_options",
                value=None,  # may hold a secret
            )
        accepted = set(inspect.signature(RipTideClient.__init__).parameters) - {"self", "base_url"}
        unknown = sorted(str(key) for key in client_options if key not in accepted)
        if unknown:
            raise ValidationError(
                f"client_options has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"RipTideClient takes {', '.join(sorted(accepted))} (base_url is its own argument)",
                field="client_options",
                value=unknown,
            )
        client_options = dict(client_options)
        if client_options.get("api_key") is None and os.environ.get("RIPTIDE_API_KEY"):
            # Resolved here, where the job is built: remote workers do not share this
            # process's environment.
            client_options["api_key"] = os.environ["RIPTIDE_API_KEY"]
        RipTideClient(base_url, **client_options).close()  # its checks; opens nothing
        self.base_url = base_url
        """The server's base URL, validated."""
        self.checkpoint_dir = directory
        """The absolute checkpoint directory."""
        self.transport = transport
        """``"websocket"``, ``"ndjson"`` or ``"sse"``."""
        self._client_options = client_options
        self.options = coerce_options(options)
        """The validated crawl options, or None."""

    def client(self) -> Any:
        """A new :class:`~riptide_sync.RipTideClient` with these settings (close it)."""
        from .client import RipTideClient

        return RipTideClient(self.base_url, **self._client_options)

    def __repr__(self) -> str:
        shown = {
            key: ("***" if key in _SECRET_OPTIONS and value is not None else value)
            for key, value in self._client_options.items()
        }
        return (
            f"PartitionSettings({self.base_url!r}, {self.checkpoint_dir!r}, "
            f"transport={self.transport!r}, client_options={shown!r}, options={self.options!r})"
        )

    def __dask_tokenize__(self) -> Any:
        # A stable task name that differs per secret without containing it.
        secrets = {
            key: hashlib.sha256(str(value).encode()).hexdigest()
            for key, value in self._client_options.items()
            if key in _SECRET_OPTIONS
        }
        return (type(self).__name__, repr(self), sorted(secrets.items()))


def checkpoint_path(checkpoint_dir: str, indices: Sequence[int], urls: Sequence[str]) -> str:
    """The checkpoint file of one partition: named by its first global index and a digest
    of its (index, URL) pairs, so the same partition finds its file on every run and a
    differently cut one never reads another's (``part-0000003000-1000-<digest>.jsonl``)."""
    digest = hashlib.sha256()
    for index, url in zip(indices, urls):
        digest.update(f"{index}\t{url}\n".encode())
    first = indices[0] if len(indices) else 0
    return os.path.join(
        checkpoint_dir, f"part-{first:010d}-{len(urls)}-{digest.hexdigest()[:16]}.jsonl"
    )


def crawl_partition(
    urls: Sequence[str],
    *,
    settings: PartitionSettings,
    start: int = 0,
    indices: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Crawl one partition, resuming from its checkpoint; return each URL's row once.

    Args:
        urls: the partition's URLs (absolute http(s)).
        settings: the crawl's shared settings.
        start: the global index of ``urls[0]`` (contiguous partitions: Dask, Spark's
            ``zipWithIndex``).
        indices: the global index of each URL instead of ``start`` (any partitioning,
            e.g. a Ray Data batch with an index column).

    Returns:
        ``{"index": <global index>, "url": <url>, "result": <wire result dict>}`` for
        every URL of the partition, in index order; results already in the checkpoint
        come from it, the others are crawled (and appended to it as they arrive).

    Raises:
        ValidationError: a URL is not an absolute http(s) URL (named with its global
            index), or ``indices`` does not match ``urls``; before any network I/O.
        IncompleteStreamError: the stream gave up with URLs still missing (the server
            refused them, or retries ran out); ``missing`` names them and
            ``missing_indices`` holds their global indices. What was delivered stays in
            the checkpoint: running the partition again crawls only the rest.
        APIError, StreamingError: as the stream raises them (e.g. a bad API key; a
            ``SlowConsumerError`` of ``overflow="error"`` keeps partition-local indices).
    """
    url_list = list(urls)
    if indices is None:
        if type(start) is not int or start < 0:
            raise ValidationError(f"start must be an int >= 0, got {start!r}", field="start", value=start)
        positions = list(range(start, start + len(url_list)))
    else:
        positions = list(indices)
        if len(positions) != len(url_list) or any(type(i) is not int or i < 0 for i in positions):
            raise ValidationError(
                f"indices must hold one int >= 0 per URL ({len(url_list)}), got {len(positions)} value(s)",
                field="indices",
                value=None,
            )
    if not url_list:
        return []
    check_each_url(url_list, positions)  # named by their global positions
    os.makedirs(settings.checkpoint_dir, exist_ok=True)
    path = checkpoint_path(settings.checkpoint_dir, positions, url_list)
    with _exclusive(path):
        return _crawl_locked(url_list, positions, settings, path)


def _crawl_locked(
    url_list: list[str], positions: list[int], settings: PartitionSettings, path: str
) -> list[dict[str, Any]]:
    """:func:`crawl_partition` once this run holds the partition's lock."""
    crawled: dict[int, dict[str, Any]] = {}
    try:
        with settings.client() as client:
            method = getattr(client.streaming, TRANSPORTS[settings.transport])
            with method(url_list, settings.options, checkpoint=path) as stream:
                for event in stream:
                    if event.event_type == "result":
                        crawled[event.data["index"]] = event.data.get("result") or {}
    except IncompleteStreamError as exc:
        raise _globalised(exc, positions, url_list) from exc
    # The stream skipped what the checkpoint already held; read those back from it (after
    # the stream, which read the file as it started: where the file system has no locks,
    # another run of this partition may have added lines since).
    recorded = Checkpoint(path, url_list).load() if len(crawled) < len(url_list) else {}
    rows: list[dict[str, Any]] = []
    missing: list[int] = []
    for local_index, url in enumerate(url_list):
        result = crawled.get(local_index)
        if result is None:
            result = recorded.get(local_index)
        if result is None:  # safety net: a summary came yet a URL has no result anywhere
            missing.append(local_index)
            continue
        rows.append({"index": positions[local_index], "url": url, "result": result})
    if missing:
        raise IncompleteStreamError(
            f"partition at index {positions[0]}: {len(missing)} URL(s) have neither a result "
            f"nor a checkpoint line in {path}",
            missing=[url_list[i] for i in missing],
            missing_indices=[positions[i] for i in missing],
            delivered=len(rows),
        )
    rows.sort(key=lambda row: int(row["index"]))
    return rows


class _LocalLock:
    """The in-process lock of one checkpoint file, and how many runs hold or want it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


_local_locks: dict[str, _LocalLock] = {}  # forgotten when no run holds or wants it
_local_locks_guard = threading.Lock()


@contextlib.contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """Hold the partition's lock: one run of a partition at a time, in this process (a
    lock per file) and across processes and machines (``flock`` on the checkpoint file,
    where the platform and file system have it). An engine may start a partition again
    while an earlier run still lives (a worker it gave up on, two computations sharing
    partitions); the later run waits, then finds the earlier one's results in the
    checkpoint and crawls only what is left. A run that dies releases the lock with its
    process."""
    with _local_locks_guard:
        local = _local_locks.setdefault(path, _LocalLock())
        local.users += 1
    try:
        waited = False
        while not local.lock.acquire(timeout=LOCK_POLL_INTERVAL):
            waited = _note_wait(path, waited)
        try:
            with _file_lock(path, waited):
                yield
        finally:
            local.lock.release()
    finally:
        with _local_locks_guard:
            local.users -= 1
            if not local.users:
                del _local_locks[path]


@contextlib.contextmanager
def _file_lock(path: str, waited: bool) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the in-process lock only
        yield
        return
    with open(path, "ab") as file:
        while True:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waited = _note_wait(path, waited)
                time.sleep(LOCK_POLL_INTERVAL)
                continue
            except OSError as exc:  # e.g. ENOLCK: a network file system without locks
                logger.warning("! cannot lock %s (%s): runs of this partition in other "
                               "processes are not kept apart", path, exc)
                yield
                return
            break
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def _note_wait(path: str, waited: bool) -> bool:
    if not waited:
        logger.info("another run of this partition is crawling it; waiting for %s", path)
    return True


def _globalised(
    exc: IncompleteStreamError, positions: list[int], urls: list[str]
) -> IncompleteStreamError:
    """The stream's error with the partition's global indices and where it starts."""
    local = exc.missing_indices
    return IncompleteStreamError(
        f"partition of {len(urls)} URL(s) from index {positions[0]} could not be completed "
        f"({exc.message})",
        missing=[urls[i] for i in local],
        missing_indices=[positions[i] for i in local],
        delivered=exc.delivered,
    )
