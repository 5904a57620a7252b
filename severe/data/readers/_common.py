"""Shared helpers of the annotation readers: reading files and reporting bad lines as SevereError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from severe.errors import SevereError


def require_file(path: Path, what: str = "annotation file") -> Path:
    """Return ``path`` if it is a file, else raise a SevereError naming it."""
    if not path.is_file():
        raise SevereError(f"missing {what}: {path} (see docs: datasets layout under the data root)")
    return path


def file_signature(path: Path) -> tuple[str, int, int, int, int]:
    """(resolved path, mtime_ns, ctime_ns, size, inode): a cache key that changes when the file does."""
    st = require_file(path).stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def read_text(path: Path, what: str = "annotation file") -> str:
    """The UTF-8 text of an annotation file; SevereError if it is absent or not UTF-8."""
    require_file(path, what)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SevereError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def numbered_lines(path: Path, what: str = "annotation file") -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without line end) for every non-blank line.

    Handles LF and CRLF files and a missing final newline. Trailing whitespace is kept (callers split).
    """
    for no, line in enumerate(read_text(path, what).splitlines(), start=1):
        if line.strip():
            yield no, line


def bad_line(path: Path, lineno: int, message: str) -> SevereError:
    """A SevereError for a malformed line: ``<file>:<line>: <message>``."""
    return SevereError(f"{path}:{lineno}: {message}")


def parse_int(token: str, path: Path, lineno: int, what: str) -> int:
    """``int(token)`` or a SevereError naming file, line and the bad value."""
    try:
        return int(token)
    except (TypeError, ValueError):
        raise bad_line(path, lineno, f"{what} must be an integer, got {token!r}") from None


def parse_float(token: str, path: Path, lineno: int, what: str) -> float:
    """``float(token)`` or a SevereError naming file, line and the bad value."""
    try:
        return float(token)
    except (TypeError, ValueError):
        raise bad_line(path, lineno, f"{what} must be a number, got {token!r}") from None


def check_label(label: int, num_classes: int | None, path: Path, lineno: int) -> int:
    """Return ``label`` if it lies in [0, num_classes), else raise naming file and line."""
    if label < 0 or (num_classes is not None and label >= num_classes):
        raise bad_line(path, lineno, f"label {label} outside 0..{(num_classes or 0) - 1}")
    return label


def load_json(path: Path, what: str = "annotation file") -> Any:
    """Parse a JSON file; SevereError with line/column when it is malformed."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SevereError(f"{path}:{e.lineno}: malformed JSON ({e.msg}, column {e.colno})") from None


def json_field(obj: Any, key: str, path: Path, index: int) -> Any:
    """``obj[key]`` of the index-th record of a JSON list, or a SevereError naming file and record."""
    if not isinstance(obj, dict) or key not in obj:
        raise SevereError(f"{path}: record {index} has no field {key!r}: {str(obj)[:120]}")
    return obj[key]
