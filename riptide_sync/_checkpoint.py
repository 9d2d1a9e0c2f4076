"""Checkpoint files: each delivered result appended as one JSON line.

A later run over the same URL list with the same checkpoint skips the positions already in
the file, so even a crash of the client process loses nothing. A line is only trusted when
its ``url`` is the caller's URL at its ``index``; a torn last line (the process died while
writing it) is ignored.
"""

from __future__ import annotations

import json
import os
import threading
from typing import IO, Any, Sequence

__all__ = ["Checkpoint"]


class Checkpoint:
    """An append-only JSON Lines record of delivered results.

    Args:
        path: the file; created if missing.
        urls: the caller's URL list, to check each line against.
    """

    def __init__(self, path: str | os.PathLike[str], urls: Sequence[str]) -> None:
        self.path = os.fspath(path)
        self._urls = urls
        self._file: IO[str] | None = None
        self._closed = False
        self._lock = threading.Lock()  # close() may come from another thread mid-append

    def load(self) -> dict[int, dict[str, Any]]:
        """Results already recorded, by the caller's index (the first line for an index wins)."""
        done: dict[int, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as file:
                for line in file:
                    try:
                        entry = json.loads(line)
                    except ValueError:
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
        if self._file is None:
            torn = _ends_without_newline(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if torn:
                self._file.write("\n")  # end a torn line so ours stays readable
        line = json.dumps({"index": index, "url": self._urls[index], "result": result})
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file; idempotent, any thread."""
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None


def _ends_without_newline(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return False
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"
    except FileNotFoundError:
        return False
