"""``crawl``'s files across runs: which file is the output and which the checkpoint
(:class:`Files`), and the repairs before a resumed run appends (a torn last line cut, the
output and a separate checkpoint given each other's results)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .._checkpoint import Checkpoint
from .sinks import jsonl_line

__all__ = ["Files", "drop_torn_tail", "line_count", "reconcile", "same_file"]


@dataclass
class Files:
    """Where results go: ``--output`` and the checkpoint (``--checkpoint``, or the output
    under ``--resume``), and whether the output is kept and appended to."""

    output: str | None
    checkpoint: str | None
    shared: bool
    """The output file is the checkpoint: the SDK writes it, the sink only counts."""
    append: bool


def same_file(first: str, second: str) -> bool:
    """Whether two paths name one file (by path when either does not exist yet)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.abspath(first) == os.path.abspath(second)


def line_count(path: str) -> int:
    """The non-blank lines of ``path``; 0 when it is missing or unreadable."""
    try:
        with open(path, "rb") as file:
            return sum(1 for line in file if line.strip())
    except OSError:  # missing: nothing to keep; unreadable: opening it for writing says why
        return 0


def drop_torn_tail(path: str) -> int:
    """Cut a last line left without its newline (the process died while writing it), so the
    resumed file stays valid JSON Lines; return the bytes dropped."""
    try:
        with open(path, "rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            file.seek(-1, os.SEEK_END)
            if file.read(1) == b"\n":
                return 0
            step, end = 65536, size
            while end > 0:  # find the last newline, reading backwards
                start = max(0, end - step)
                file.seek(start)
                chunk = file.read(end - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                end = start
            else:
                keep = 0
            file.truncate(keep)
            return size - keep
    except FileNotFoundError:
        return 0


def reconcile(output: str, checkpoint: str, urls: list[str]) -> None:
    """Before resuming with a separate checkpoint: give each file the results only the
    other holds, so the output ends with every URL once and the checkpoint skips them all.
    (A run stopped between the SDK recording a result and the CLI writing it leaves one.)"""
    record, written = Checkpoint(checkpoint, urls), Checkpoint(output, urls)
    in_checkpoint, in_output = record.load(), written.load()
    with open(output, "a", encoding="utf-8") as file:
        for index in sorted(set(in_checkpoint) - set(in_output)):
            file.write(jsonl_line(index, urls[index], in_checkpoint[index]))
    try:
        for index in sorted(set(in_output) - set(in_checkpoint)):
            record.append(index, in_output[index])
    finally:
        record.close()


