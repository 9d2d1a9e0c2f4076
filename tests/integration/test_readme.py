"""The README (and docs/*.md) as a test: every Python block runs, every command line parses.

Each ```python block of README.md and docs/*.md runs in a fresh interpreter, as written,
and must exit 0 without a traceback or a warning. What a block needs from the text around
it is said in an HTML comment on the line before its fence, which the reader does not see:

- no comment: the block stands alone; it runs with a clean environment (no RIPTIDE_*
  variables, no proxies) and must bring what it needs (the Quick start starts its own
  server).
- ``<!-- fragment: client, urls -->``: a snippet of a guide that takes the names listed
  from its context. The test defines them before the block (``FRAGMENT_NAMES``; a public
  name of ``riptide_sync`` is imported from it) and runs it against a local server of its
  own, which ``$RIPTIDE_BASE_URL`` names, as it would name ``riptide-sync serve``.
- ``<!-- not run: reason -->``: a block that cannot run here (it names a cluster, an
  engine or a host this machine has not); it is still compiled, and the reason must be said.

So the README cannot drift from the code: a renamed argument, a changed event or a
snippet that no longer runs fails here. The riptide-sync command lines (shell blocks, and
inline code in the prose) are parsed by the CLI's own parser.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import clean_env

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

MARKER = re.compile(r"<!--\s*(fragment|not run):\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass
class Block:
    """One fenced code block of a Markdown document."""

    path: Path
    line: int
    """Line number of the opening fence (1-based)."""
    language: str
    code: str
    heading: str
    """The nearest heading above the block ("" before the first)."""
    marker: tuple[str, str] | None
    """("fragment", "client, urls") or ("not run", reason) from the comment before it."""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        line = before.count("\n") + 1
        previous = before.rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(previous.strip())
        headings = re.findall(r"^#+ (.+)$", before, re.M)
        found.append(Block(path, line, match.group(1), match.group(2), headings[-1] if headings else "",
                           (marker.group(1), marker.group(2)) if marker else None))
    return found


BLOCKS = [block for path in DOCUMENTS for block in _blocks(path)]
PYTHON = [block for block in BLOCKS if block.language == "python"]


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, every warning an error (as in the suite)."""
    return subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=60, env=env, cwd=REPO)


@pytest.fixture(scope="module")
def readme_server() -> Iterator[Any]:
    """The server the fragments talk to: a fresh one (they write its cache)."""
    from riptide_sync.server import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig()) as running:
        yield running


def _fragment_preamble(names: list[str], server: Any) -> tuple[str, str]:
    """The code that defines ``names`` before a fragment, and what closes them after it."""
    import riptide_sync

    lines, after = ["import riptide_sync"], []
    for name in names:
        if name in FRAGMENT_NAMES:
            define, close = FRAGMENT_NAMES[name]
            lines.append(define(server))
            if close:
                after.append(close)
        elif name in riptide_sync.__all__:
            lines.append(f"from riptide_sync import {name}")
        else:
            raise AssertionError(f"the fragment takes {name!r}, which the test cannot define")
    return "\n".join(lines) + "\n", "\n".join(after) + "\n"


FRAGMENT_NAMES: dict[str, tuple[Callable[[Any], str], str | None]] = {
    # name: (its definition, given the test's server; what closes it after the block)
    "client": (lambda server: "client = riptide_sync.RipTideClient()  # $RIPTIDE_BASE_URL", "client.close()"),
    "urls": (lambda server: f"urls = {server.article_urls()[:5]!r}", None),
    "enough": (lambda server: "def enough(event):\n    return event.event_type == 'result'", None),
}
"""The names the guide's fragments take from their context, and how the test defines them."""


def _check_quick_start(block: Block, stdout: str) -> None:
    """The Quick start prints each of its 5 demo pages (status 200, ok) and the count."""
    section = block.path.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    assert "example.com" not in section.split("## ", 1)[0]
    lines = stdout.splitlines()
    assert lines[-1] == "5 of 5 succeeded"
    assert sum(" 200 True" in line and "demo.riptide.test" in line for line in lines) == 5


CHECKS: dict[str, Callable[[Block, str], None]] = {"Quick start": _check_quick_start}
"""What a block's output must show beyond a clean exit, by the heading it stands under."""


def test_every_python_block_is_found():
    """The README's Python blocks are read (a fence the pattern misses would go untested)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len([b for b in PYTHON if b.path.name == "README.md"]) == readme.count("```python\n")
    assert any(b.heading == "Quick start" and b.marker is None for b in PYTHON)


@pytest.mark.parametrize("block", PYTHON, ids=[block.id for block in PYTHON])
def test_python_block_runs(block: Block, request: pytest.FixtureRequest) -> None:
    """The block runs as written (a fragment with its context defined); a block marked
    not run still compiles and says why it is not run."""
    if block.marker is not None and block.marker[0] == "not run":
        assert block.marker[1], f"{block.id}: say why the block is not run"
        compile(block.code, block.id, "exec")
        return
    if block.marker is None:
        code, env = block.code, clean_env()
    else:
        server = request.getfixturevalue("readme_server")
        names = [name.strip() for name in block.marker[1].split(",") if name.strip()]
        before, after = _fragment_preamble(names, server)
        code = before + block.code + after
        env = clean_env(RIPTIDE_BASE_URL=server.base_url)
    proc = _run(code, env)
    assert proc.returncode == 0, f"{block.id} failed:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    check = CHECKS.get(block.heading)
    if check is not None:
        check(block, proc.stdout)


def _command_lines() -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """The riptide-sync command lines as (where, argv after the program name): those of
    the shell blocks, and those of the prose's inline code (usage synopses such as
    ``[--port N]`` left out)."""
    in_blocks = []
    for block in BLOCKS:
        if block.language not in ("bash", "sh", "shell", "console"):
            continue
        for line in block.code.splitlines():
            for part in line.split("#", 1)[0].replace("&&", ";").split(";"):
                words = [w for w in shlex.split(part) if w != "&"]
                if ">" in words:
                    words = words[: words.index(">")]
                if words and words[0].endswith("riptide-sync"):
                    in_blocks.append((block.id, words[1:]))
    inline = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"`riptide-sync ([^`\[]*)`", text):
            where = f"{path.relative_to(REPO)}:{text[: match.start()].count(chr(10)) + 1}"
            inline.append((where, shlex.split(match.group(1))))
    return in_blocks, inline


def _parse(parser: argparse.ArgumentParser, where: str, argv: list[str]) -> argparse.Namespace:
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # argparse's error exit
        raise AssertionError(f"{where}: riptide-sync {shlex.join(argv)} does not parse") from exc
    assert not extra, (where, argv)
    return args


def test_readme_command_lines_parse():
    """Every riptide-sync command line in the README's shell blocks is accepted by the
    parser as written, and names a command (options and subcommands cannot drift from the
    docs); so is every one in the inline code of README.md and docs/*.md."""
    from riptide_sync.cli import build_parser

    in_blocks, inline = _command_lines()
    in_blocks = [(where, argv) for where, argv in in_blocks if argv not in (["-V"], ["--version"])]
    assert len([where for where, _ in in_blocks if where.startswith("README.md:")]) >= 10
    assert inline
    parser = build_parser()
    for where, argv in in_blocks:
        assert getattr(_parse(parser, where, argv), "func", None), (where, argv)
    for where, argv in inline:
        args = _parse(parser, where, argv)
        if argv and not argv[0].startswith("-"):  # it names a subcommand: a real one
            assert getattr(args, "func", None), (where, argv)


def test_readme_documents_every_public_knob():
    """Each parameter of the client, the stream calls, RetryPolicy, ServerConfig and Faults
    is named in the README, as is every logger the library uses."""
    import dataclasses
    import inspect

    from riptide_sync import RetryPolicy, RipTideClient
    from riptide_sync.server import Faults, ServerConfig

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    client = RipTideClient()
    calls = [RipTideClient.__init__, client.crawl, client.streaming.crawl_websocket,
             client.streaming.crawl_ndjson, client.streaming.crawl_sse,
             client.streaming.ping_websocket, client.streaming.get_websocket_status]
    names = {name for call in calls for name in inspect.signature(call).parameters} - {"self", "urls"}
    names |= {f.name for cls in (RetryPolicy, ServerConfig, Faults) for f in dataclasses.fields(cls)}
    missing = sorted(name for name in names if f"`{name}" not in readme and f"{name}=" not in readme)
    assert missing == []
    root = REPO / "riptide_sync"
    loggers = {m for path in root.rglob("*.py")
               for m in re.findall(r'getLogger\("(riptide_sync[^"]*)"\)', path.read_text(encoding="utf-8"))}
    assert loggers and all(f"`{name}`" in readme for name in loggers), loggers
    assert "ping_websocket(websocket_url=None)" in readme
    client.close()
