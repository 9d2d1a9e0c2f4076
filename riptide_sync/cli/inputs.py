"""``crawl``'s input: URLs from the arguments and ``-i`` files, each bad one reported with
where it came from (file and line, or argument position) while the rest are still crawled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from ..protocol.urls import url_problem

__all__ = ["UrlList", "collect_urls"]


@dataclass
class UrlList:
    """The URLs to crawl, and what was wrong with the rest of the input."""

    urls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One message per rejected line or argument, naming where it came from."""


def collect_urls(arguments: list[str], inputs: list[str], stdin: TextIO | None) -> UrlList:
    """Gather URLs from the positional arguments, then each ``-i`` file in order (``-``:
    ``stdin``, None when the process has none).

    Raises:
        OSError: an input file cannot be read (the message names it), or ``-`` was given
            and there is no standard input.
    """
    found = UrlList()

    def take(url: str, where: str) -> None:
        problem = url_problem(url)
        if problem:
            found.problems.append(f"{where}: {url!r} is not a valid URL: {problem}")
        else:
            found.urls.append(url)

    for position, url in enumerate(arguments, 1):
        take(url, f"argument {position}")
    for name in inputs:
        if name == "-":
            if stdin is None:
                raise OSError("there is no standard input to read (-i -)")
            # A pipe from a Windows editor or PowerShell may start with a byte order mark,
            # which open(encoding="utf-8-sig") drops for a file but stdin keeps.
            lines, label = stdin.read().lstrip("\ufeff").splitlines(), "<stdin>"
        else:
            with open(name, encoding="utf-8-sig") as file:
                lines, label = file.read().splitlines(), name
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                take(text, f"{label} line {number}")
    return found


