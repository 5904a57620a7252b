"""Every reference to the repository's documentation (``docs/<name>.md``, optionally followed by sections
such as ``§2``, ``§1.2-1.3``, ``§17, §21`` or a lettered group ``§D``) names an existing file and existing
numbered headings. Inside ``docs/`` the same holds for references written relative to the folder
(``tasks.md §3``). Headings are numbered like ``## 2. Settings``, ``### 1.4 Sampling`` or ``## D. Mechanics``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

ROOT = REPO
DOCS = ROOT / "docs"
SCANNED_SUFFIXES = (".py", ".md", ".yaml")
SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules"}

_SECTION = r"(?:[0-9]+(?:\.[0-9]+)*|[A-Z](?![\w]))"
_SEPARATOR = r"(?:[ \t]*[-–][ \t]*§?|,[ \t]*§|[ \t]+and[ \t]+§|[ \t]*/[ \t]*§)"
_SECTIONS = rf"(?:[ \t]*§[ \t]?(?P<sections>{_SECTION}(?:{_SEPARATOR}[ \t]?{_SECTION})*))?"
# ``docs/name.md`` anywhere; closing backticks, brackets or parentheses may follow the file name.
REPO_REFERENCE = re.compile(rf"(?<![\w/.-])docs/(?P<name>[\w-]+)\.md[`)\]]*{_SECTIONS}")
# Inside docs/: ``name.md`` without a folder (links and plain mentions of a sibling file).
SIBLING_REFERENCE = re.compile(rf"(?<![\w/.-])(?P<name>[\w-]+)\.md[`)\]]*{_SECTIONS}")
HEADING = re.compile(r"^#{1,6}[ \t]+(?:§[ \t]?)?(?:(?P<number>[0-9]+(?:\.[0-9]+)*)\.?|(?P<letter>[A-Z])\.)(?:[ \t]|$)")
FENCE = re.compile(r"^[ \t]*(```|~~~)")


@dataclass(frozen=True)
class Reference:
    source: str  # "<file>:<line>"
    target: str  # docs file name, e.g. "protocol.md"
    sections: tuple[str, ...]
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


def heading_ids(path: Path) -> set[str]:
    """Numbers ("2", "1.4") and letters ("D") of the numbered headings of a markdown file (code fences skipped)."""
    ids: set[str] = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        m = None if in_fence else HEADING.match(line)
        if m:
            ids.add(m.group("number") or m.group("letter"))
    return ids


def find_references(text: str, source: str, sibling: bool = False) -> list[Reference]:
    """References in ``text``; ``sibling`` also accepts folder-less ``name.md`` (for files inside docs/)."""
    pattern = SIBLING_REFERENCE if sibling else REPO_REFERENCE
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for m in pattern.finditer(line):
            sections = tuple(re.findall(_SECTION, m.group("sections") or ""))
            out.append(Reference(f"{source}:{lineno}", f"{m.group('name')}.md", sections, m.group(0)))
    return out


def scanned_files(root: Path) -> list[Path]:
    """Every .py/.md/.yaml file under ``root``, skipping VCS, virtual-env and cache folders."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        files += [Path(folder) / n for n in sorted(names) if n.endswith(SCANNED_SUFFIXES)]
    return files


def broken_references(root: Path, skip: tuple[Path, ...] = ()) -> tuple[list[Reference], list[str]]:
    """(all references found, one message per reference whose file or section does not exist)."""
    docs = root / "docs"
    headings: dict[str, set[str] | None] = {}
    found: list[Reference] = []
    broken: list[str] = []
    for path in scanned_files(root):
        if path.resolve() in skip:
            continue
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        refs = find_references(text, rel)
        if path.parent == docs and path.suffix == ".md":
            refs += [r for r in find_references(text, rel, sibling=True) if not r.text.startswith("docs/")]
        for ref in refs:
            found.append(ref)
            if ref.target not in headings:
                target = docs / ref.target
                headings[ref.target] = heading_ids(target) if target.is_file() else None
            ids = headings[ref.target]
            if ids is None:
                broken.append(f"{ref}: docs/{ref.target} does not exist")
                continue
            missing = [s for s in ref.sections if s not in ids]
            if missing:
                broken.append(f"{ref}: docs/{ref.target} has no heading numbered {', '.join(missing)}")
    return found, broken


def test_every_docs_reference_resolves():
    found, broken = broken_references(ROOT, skip=(Path(__file__).resolve(),))
    assert found, "no docs/<name>.md reference found at all: the scanner is broken"
    assert not broken, f"{len(broken)} broken documentation reference(s):\n" + "\n".join(broken)


def test_docs_index_links_every_docs_file():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "README.md" and f"]({p.name})" not in index]
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"


def test_checker_parses_every_reference_form_and_reports_broken_ones(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## 1. One\n\n### 1.2 One two\n\n### 1.3 One three\n\n## 2 Two\n\n## D. Letters\n\n"
        "### 25. An item\n\n```bash\n# 7 not a heading\n```\n\nSee [guide.md](guide.md) §2 and other.md §1.\n",
        encoding="utf-8")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        '"""Text (docs/guide.md §1.2-1.3, §2, docs/guide.md §D). `docs/guide.md` §1–2.\n'
        "Lists docs/guide.md §25, §2 and docs/guide.md §1.3. Bare docs/guide.md here.\n"
        'Broken: docs/guide.md §3, docs/guide.md §1.2-1.4, docs/guide.md §E, docs/guide.md §7, docs/missing.md §1."""\n',
        encoding="utf-8")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "skip.py").write_text("docs/missing.md §9\n", encoding="utf-8")

    found, broken = broken_references(tmp_path)

    sections = [r.sections for r in found if r.source.startswith("pkg/")]
    assert sections == [("1.2", "1.3", "2"), ("D",), ("1", "2"), ("25", "2"), ("1.3",), (), ("3",), ("1.2", "1.4"),
                        ("E",), ("7",), ("1",)]
    assert [b.split(": ", 1)[0] for b in broken] == ["docs/guide.md:19", "pkg/mod.py:3", "pkg/mod.py:3", "pkg/mod.py:3",
                                                     "pkg/mod.py:3", "pkg/mod.py:3"]
    assert [b.rsplit(": ", 1)[1] for b in broken] == [
        "docs/other.md does not exist",
        "docs/guide.md has no heading numbered 3",
        "docs/guide.md has no heading numbered 1.4",
        "docs/guide.md has no heading numbered E",
        "docs/guide.md has no heading numbered 7",  # '# 7' inside a code fence is not a heading
        "docs/missing.md does not exist",
    ]
