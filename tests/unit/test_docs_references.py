"""Every reference to the project's docs resolves to a file and a section that exist.

The code, README, setup.cfg, tests and benchmarks cite the docs as ``docs/<name>.md §<N>``
(``N`` like ``1``, ``1.8`` or ``0.2``). A section exists when a ``#`` heading of that file
starts with its number (``## 1. WebSocket``, ``### 1.8 Keepalive``). What counts as a
reference, in every tracked text file (``*.py``, ``*.md``, ``*.cfg``, ``*.toml``, ``*.sh``
and extensionless scripts such as ``.ci/run``):

- a named citation: the file name, then optionally one section or a chain of them, each
  with its own section sign (``§2, §3``, ``§5.1-§5.2``, ``§1.1 and §6``), or a double
  sign before a list (``§§1.6, 2.3``); line breaks, comment markers, ``(`` and Markdown
  backticks may sit between the file name and its first section sign;
- a section sign on its own (``(§1.9)``): it belongs to the doc named right after it
  (``§1.8 of docs/protocol.md``), else to the doc the same file last named before it, or
  to ``docs/protocol.md`` when the file has named none yet; inside ``docs/`` it belongs
  to the file it is written in. Signs after ``RFC <n>`` or
  ``WHATWG HTML`` cite those specs and are not checked, nor are bare signs up to a few
  lines after such a citation (the same passage still citing that spec);
- a relative Markdown link to a ``.md`` file (``[x](protocol.md)``).

The specs once lived outside the repository under upper-case names; no file may cite those
names any more.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
THIS = Path(__file__).resolve()

TEXT_SUFFIXES = {".py", ".md", ".cfg", ".toml", ".sh"}

# The former out-of-tree spec names, upper case with ".md" (built here, so that this file
# does not cite them itself).
_OLD_NAMES = ("PROTOCOL", "DESIGN", "STYLE")
OLD_NAME_RE = re.compile(
    r"\b(?:" + "|".join(_OLD_NAMES) + r")(?:\.md\b|\s*\(?§)"
)

_NUMBER = r"\d+(?:\.\d+)*"
_SEP = r"\s*(?:,|-|–|—|\band\b|\bor\b|\bto\b)\s*"
# A named citation: docs/<name>.md, then optional sections. Between the name and the first
# sign: spaces, a line break, comment markers, "(", Markdown's backticks and asterisks.
CITATION_RE = re.compile(
    r"(?<![\w/.-])docs/(?P<name>[\w.-]+?)\.md\b"
    r"(?P<chain>[\s#(`*]*(?:"
    r"§§\s*" + _NUMBER + r"(?:" + _SEP + r"§?\s*" + _NUMBER + r")*"
    r"|§\s*" + _NUMBER + r"(?:" + _SEP + r"§\s*" + _NUMBER + r")*"
    r"))?"
)
BARE_SIGN_RE = re.compile(r"§§?\s*(" + _NUMBER + r")((?:" + _SEP + _NUMBER + r")*)")
# Section signs that cite another spec: "RFC 6455 §5.2", "WHATWG HTML §9.2.6".
FOREIGN_SPEC_RE = re.compile(r"(?:\bRFC\s*\d+|\bWHATWG(?:\s+HTML)?|\bHTML)[\s,(]*$")
FOREIGN_CITATION_RE = re.compile(r"(?:\bRFC\s*\d+|\bWHATWG(?:\s+HTML)?|\bHTML)[\s,(]*§")
FOREIGN_REACH = 5
"""Lines after a foreign citation within which a bare sign still belongs to that spec
(unless a docs file was named in between): "RFC 6455 §5.5.1 ... (§7.4.1)"."""
# A sign followed by the file it belongs to: "§1.8 of docs/protocol.md", "§4 in docs/design.md".
TRAILING_NAME_RE = re.compile(r"[\s`]+(?:of|in)\s+`?docs/(?P<name>[\w.-]+?)\.md\b")
MD_LINK_RE = re.compile(r"\]\((?P<target>[^)\s#]+\.md)(?:#[^)\s]*)?\)")
HEADING_RE = re.compile(r"^#{1,6}\s+(" + _NUMBER + r")\.?(?:\s|$)")
FENCE_RE = re.compile(r"^\s*(```|~~~)")

DEFAULT_DOC = "protocol"


@dataclasses.dataclass(frozen=True)
class Reference:
    """One reference found in a file: which doc, which section (None: the file only)."""

    path: str
    line: int
    doc: str
    section: str | None
    text: str


def headings(path: Path) -> set[str]:
    """The leading numbers of a Markdown file's ``#`` headings, outside code fences."""
    numbers = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE_RE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        match = HEADING_RE.match(line)
        if match:
            numbers.add(match.group(1))
    return numbers


def _chain_numbers(chain: str) -> list[str]:
    """The section numbers of a citation's chain (``§2, §3`` -> ["2", "3"])."""
    if not chain or "§" not in chain:
        return []
    chain = chain[chain.index("§"):]
    if chain.startswith("§§"):  # a double sign: every number of the list is a section
        return re.findall(_NUMBER, chain)
    return re.findall(r"§\s*(" + _NUMBER + r")", chain)


def references(text: str, path: str) -> Iterator[Reference]:
    """Every docs reference in ``text`` (the contents of the file at ``path``)."""

    def line_of(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    in_docs = path.startswith("docs/")
    own = path[len("docs/"):-len(".md")] if in_docs and path.endswith(".md") else None
    covered: list[tuple[int, int]] = []  # spans of named citations' chains
    named: list[tuple[int, str]] = []  # (offset, doc) of every named citation
    for match in CITATION_RE.finditer(text):
        doc = match.group("name")
        named.append((match.start(), doc))
        numbers = _chain_numbers(match.group("chain") or "")
        snippet = match.group(0).replace("\n", " ")
        if not numbers:
            yield Reference(path, line_of(match.start()), doc, None, snippet)
        for number in numbers:
            yield Reference(path, line_of(match.start()), doc, number, snippet)
        if match.group("chain"):
            covered.append((match.start("chain"), match.end("chain")))
    foreign = [m.start() for m in FOREIGN_CITATION_RE.finditer(text)]
    for match in BARE_SIGN_RE.finditer(text):
        start = match.start()
        if any(lo <= start < hi for lo, hi in covered):
            continue
        line_start = text.rfind("\n", 0, start) + 1
        if FOREIGN_SPEC_RE.search(text[line_start:start]):
            continue
        last_foreign = max((o for o in foreign if o < start), default=-1)
        last_named = max((o for o, _ in named if o < start), default=-1)
        if last_foreign > last_named and line_of(start) - line_of(last_foreign) <= FOREIGN_REACH:
            continue  # the same passage goes on citing that RFC
        after = TRAILING_NAME_RE.match(text, match.end())
        if after:  # "§1.8 of docs/protocol.md"
            doc = after.group("name")
        elif own is not None:
            doc = own
        else:
            earlier = [d for offset, d in named if offset < start]
            doc = earlier[-1] if earlier else DEFAULT_DOC
        numbers = [match.group(1)]
        if match.group(0).startswith("§§"):
            numbers += re.findall(_NUMBER, match.group(2) or "")
        for number in numbers:
            yield Reference(path, line_of(start), doc, number, match.group(0))
    for match in MD_LINK_RE.finditer(text):
        target = match.group("target")
        if "://" in target:
            continue
        resolved = (ROOT / path).parent / target
        try:
            relative = resolved.resolve().relative_to(ROOT)
        except ValueError:
            relative = resolved
        yield Reference(path, line_of(match.start()), f"@{relative.as_posix()}", None,
                        match.group(0))


def tracked_text_files() -> list[Path]:
    """The repository's tracked text files (``git ls-files``; a tree walk without git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode("utf-8").split("\0")
        paths = [ROOT / name for name in listed if name]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".mypy_cache"}
        paths = [p for p in ROOT.rglob("*") if not skip.intersection(p.relative_to(ROOT).parts)]
    # The docs themselves are always checked, tracked yet or not.
    paths += [p for p in DOCS.glob("*.md") if p not in paths]
    files = []
    for path in paths:
        if not path.is_file() or path.resolve() == THIS:
            continue  # this file's literals are the parser's fixtures, not references
        if path.suffix in TEXT_SUFFIXES:
            files.append(path)
        elif not path.suffix:
            with path.open("rb") as handle:
                if handle.read(2) == b"#!":
                    files.append(path)
    return sorted(files)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def test_docs_references_resolve() -> None:
    """Every docs/<name>.md reference names a file in docs/, and every § a heading in it."""
    cache: dict[str, set[str] | None] = {}
    problems = []
    count = 0
    for path in tracked_text_files():
        rel = path.relative_to(ROOT).as_posix()
        for ref in references(_read(path), rel):
            count += 1
            if ref.doc.startswith("@"):  # a Markdown link: the target must exist
                if not (ROOT / ref.doc[1:]).is_file():
                    problems.append(f"{ref.path}:{ref.line}: {ref.text!r} links to a missing "
                                    f"file {ref.doc[1:]}")
                continue
            if ref.doc not in cache:
                doc_path = DOCS / f"{ref.doc}.md"
                cache[ref.doc] = headings(doc_path) if doc_path.is_file() else None
            sections = cache[ref.doc]
            if sections is None:
                problems.append(f"{ref.path}:{ref.line}: {ref.text!r} cites docs/{ref.doc}.md, "
                                f"which does not exist")
            elif ref.section is not None and ref.section not in sections:
                problems.append(
                    f"{ref.path}:{ref.line}: {ref.text!r} cites §{ref.section} of "
                    f"docs/{ref.doc}.md, which has no heading numbered {ref.section}"
                )
    assert count > 0, "no docs reference found at all: the scan is broken"
    assert not problems, f"{len(problems)} unresolved docs reference(s):\n" + "\n".join(problems)


def test_docs_no_file_cites_the_old_spec_names() -> None:
    """No tracked file cites the out-of-tree spec names (upper case, ".md") any more."""
    problems = []
    for path in tracked_text_files():
        text = _read(path)
        for match in OLD_NAME_RE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            rel = path.relative_to(ROOT).as_posix()
            problems.append(f"{rel}:{line}: {match.group(0)!r}")
    assert not problems, (
        f"{len(problems)} citation(s) of the old spec names; cite docs/<name>.md §N:\n"
        + "\n".join(problems)
    )


def test_docs_index_lists_every_doc() -> None:
    """docs/README.md links every other file of docs/."""
    index = _read(DOCS / "README.md")
    for doc in sorted(DOCS.glob("*.md")):
        if doc.name != "README.md":
            assert f"({doc.name})" in index, f"docs/README.md does not link {doc.name}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see docs/protocol.md §1.8.", [("protocol", "1.8")]),
        ("(docs/protocol.md §2, §3)", [("protocol", "2"), ("protocol", "3")]),
        ("docs/protocol.md §5.1-§5.2 and", [("protocol", "5.1"), ("protocol", "5.2")]),
        ("docs/design.md §§1, 4", [("design", "1"), ("design", "4")]),
        ("(docs/protocol.md\n    §6.1) yields", [("protocol", "6.1")]),
        ("(docs/protocol.md\n# §5.2 rule)", [("protocol", "5.2")]),
        ("docs/protocol.md (§1.8)", [("protocol", "1.8")]),
        ("(`docs/protocol.md` §1.5)", [("protocol", "1.5")]),
        ("docs/protocol.md §8 row 10", [("protocol", "8")]),
        ("docs/style.md §5, then (§2.3)", [("style", "5"), ("style", "2.3")]),
        ("a bare (§1.9) first", [("protocol", "1.9")]),
        ("docs/design.md §4; docs/protocol.md §6.1; (§1.5)",
         [("design", "4"), ("protocol", "6.1"), ("protocol", "1.5")]),
        ("RFC 6455 §5.5.3 and WHATWG HTML §9.2.6 and (RFC 9110 §10.2.3)", []),
        ("# RFC 6455 §5.5.1: echo it.\n# 1005 never goes on the wire (§7.4.1).", []),
        ("RFC 6455 §5.5.3" + "\n" * 6 + "(§1.8)", [("protocol", "1.8")]),
        ("RFC 6455 §5.5.3, docs/design.md §4 then (§1)", [("design", "4"), ("design", "1")]),
        ("the docs/architecture.md file", [("architecture", None)]),
        ("docs/design.md §4, and §1.8 of docs/protocol.md",
         [("design", "4"), ("protocol", "1.8"), ("protocol", None)]),
    ],
)
def test_docs_reference_parser_reads_every_form(text: str, expected: list[tuple[str, str | None]]) -> None:
    """The parser finds each form of citation the tree uses, with the right doc and §."""
    found = [(ref.doc, ref.section) for ref in references(text, "x.py")]
    assert sorted(found, key=str) == sorted(expected, key=str)


def test_docs_reference_parser_attributes_bare_signs_in_docs_to_their_file() -> None:
    """Inside docs/, a bare § cites the file it is written in, a named one its file."""
    text = "see docs/protocol.md §1.8, then §6 here"
    found = [(ref.doc, ref.section) for ref in references(text, "docs/design.md")]
    assert sorted(found) == [("design", "6"), ("protocol", "1.8")]


def test_docs_headings_parse_numbers_outside_fences(tmp_path: Path) -> None:
    """Only numbered headings outside code fences count as sections."""
    doc = tmp_path / "x.md"
    doc.write_text("# Title\n## 1. One\n### 1.8 Eight\n```\n## 9. Not\n```\n## 10 Ten\n",
                   encoding="utf-8")
    assert headings(doc) == {"1", "1.8", "10"}
