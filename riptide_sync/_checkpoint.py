"""Checkpoint files: each delivered result appended as one JSON line.

A later run over the same URL list with the same checkpoint skips the positions already in
the file, so even a crash of the client process loses nothing. A line is only trusted when
its ``url`` is the caller's URL at its ``index``; a torn last line (the process died while
writing it, or a crash left junk, even bytes that are not UTF-8) is ignored, and costs
only its own result.

Each line goes to the OS in one ``write()`` on a file opened for appending, so two runs of
the same partition appending at once (an engine re-ran it while the first still lived)
do not interleave within a line. The file is synced to disk at most every
:data:`SYNC_INTERVAL` seconds while results arrive and when it is closed, so a lost
machine costs at most that much crawling again (never a duplicate: the first line for an
index wins).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Sequence

__all__ = ["Checkpoint", "SYNC_INTERVAL"]

SYNC_INTERVAL = 1.0
"""Seconds between two syncs of a checkpoint file to disk while results arrive."""


class Checkpoint:
    """An append-only JSON Lines record of delivered results.

    Args:
        path: the file; created if missing.
        urls: the caller's URL list, to check each line against.
    """

    def __init__(self, path: str | os.PathLike[str], urls: Sequence[str]) -> None:
        self.path = os.fspath(path)
        self._urls = urls
        self._fd: int | None = None
        self._synced = 0.0  # time.monotonic() of the last fsync
        self._closed = False
        self._lock = threading.Lock()  # close() may come from another thread mid-append

    def load(self) -> dict[int, dict[str, Any]]:
        """Results already recorded, by the caller's index (the first line for an index wins)."""
        done: dict[int, dict[str, Any]] = {}
        try:
            with open(self.path, "rb") as file:
                for line in file:
                    try:
                        entry = json.loads(line.decode("utf-8"))
                    except ValueError:  # UnicodeDecodeError included
                        continue  # a torn line from a crash mid-write
                    if not isinstance(entry, dict):
                        continue
                    index, url, result = entry.get("index"), entry.get("url"), entry.get("result")
                    if (
                        type(index) is int
                        and 0 <= index < len(self._urls)
                        and self._urls[index] == url
                        and isinstance(result, dict)
                    ):
                        done.setdefault(index, result)
        except FileNotFoundError:
            pass
        return done

    def append(self, index: int, result: dict[str, Any]) -> None:
        """Record one delivered result and flush it to the OS before returning; a no-op
        once closed (the stream was closed from another thread)."""
        with self._lock:
            if self._closed:
                return
            self._append(index, result)

    def _append(self, index: int, result: dict[str, Any]) -> None:
        assert self._lock.locked()
        data = _encode({"index": index, "url": self._urls[index], "result": result}) + b"\n"
        if self._fd is None:
            torn = _ends_without_newline(self.path)
            created = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            self._fd = os.open(self.path, flags, 0o644)
            if created:
                _sync_directory(os.path.dirname(os.path.abspath(self.path)))
            self._synced = time.monotonic()
            if torn:
                data = b"\n" + data  # end a torn line so ours stays readable
        _write_all(self._fd, data)
        if time.monotonic() - self._synced >= SYNC_INTERVAL:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        """Sync the file to disk and close it; idempotent, any thread."""
        with self._lock:
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _encode_json(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry).encode("utf-8")


try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    _encode = _encode_json
else:

    def _encode(entry: dict[str, Any]) -> bytes:
        # orjson: a 4 KB result is encoded ~10x faster, which was most of a checkpointed
        # stream's cost per result. It refuses what it cannot represent exactly (integers
        # beyond 64 bits): those lines take the standard library.
        try:
            return orjson.dumps(entry)
        except TypeError:
            return _encode_json(entry)


def _write_all(fd: int, data: bytes) -> None:
    """One ``write()`` for the whole line, unless the OS takes less (then the rest)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sync_directory(path: str) -> None:
    """Make a new file's directory entry durable (where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported for directories here (e.g. Windows)
    finally:
        os.close(fd)


def _ends_without_newline(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return False
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"
    except FileNotFoundError:
        return False
