"""Atomic file writing and hashing: nothing half-written is ever left under a final name.

Writes go to a temp file next to the target (``.<name>.<random>.tmp``), are fsynced and renamed into place;
the file gets the mode a plain ``open()`` would give (0666 minus the umask). A write that fails for a reason
of the output location (read-only file system, no space left, permission, a path under a regular file)
raises :class:`~severe.errors.WriteError`: one line naming the path and the cause.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

import torch

from severe.errors import WriteError

# errno of a write refused by the output location -> the cause in words
WRITE_CAUSES: dict[int, str] = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded (no space left)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.ENOTDIR: "not a folder (a part of the path is a regular file)",
    errno.EISDIR: "is a folder, not a file",
    errno.EFBIG: "file too large for the file system",
}

# our temp files: ".<final name>.<8 random chars of tempfile>.tmp"
TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def write_cause(err: BaseException) -> str | None:
    """The cause in words of an OSError refused by the output location, else None."""
    return WRITE_CAUSES.get(getattr(err, "errno", None)) if isinstance(err, OSError) else None


def write_error(path: str | os.PathLike, err: BaseException) -> WriteError:
    """A one-line WriteError for ``path`` from an OSError (or torch's writer RuntimeError)."""
    cause = write_cause(err)
    if cause is None:
        text = str(err).strip().splitlines()
        cause = text[0][:200] if text else type(err).__name__
    return WriteError(f"cannot write {path}: {cause}")


def _not_a_folder(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (itself included) that is not a folder, if any."""
    for p in [path, *path.parents][::-1]:
        if p.exists() and not p.is_dir():
            return p
    return None


def ensure_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents); a WriteError when a part of it is a regular file or cannot be made."""
    folder = Path(folder)
    blocker = _not_a_folder(folder)
    if blocker is not None:
        raise WriteError(f"cannot write {folder}: not a folder ({blocker} is a regular file)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(folder, e) from None
    return folder


def check_writable(folder: str | os.PathLike) -> Path:
    """Fail now (WriteError) rather than after long work when files cannot be created in ``folder``:
    creates it if needed, then writes and removes a probe file."""
    folder = ensure_folder(folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".severe-probe.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"0")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise write_error(folder, e) from None
    return folder


def current_umask() -> int:
    """The process umask (read from /proc when possible: no process-wide change, thread safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fileobj)`` on a temp file next to ``path``, fsync it, then rename it into place.

    The file gets mode ``0666 & ~umask``; an OSError of the output location becomes a WriteError, and the
    temp file is removed whatever fails."""
    path = Path(path)
    ensure_folder(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and write_cause(e) is not None:
            raise write_error(path, e) from None
        if isinstance(e, RuntimeError) and "inline_container" in str(e):  # torch's zip writer lost the OSError
            raise _torch_write_error(path, e) from None
        raise
    return path


def _torch_write_error(path: Path, err: RuntimeError) -> WriteError:
    """torch's ``[enforce fail at inline_container.cc]`` errors say nothing of the cause: recover it from the
    chained OSError, else from the free space left."""
    context = err.__context__ or err.__cause__
    if isinstance(context, OSError) and write_cause(context) is not None:
        return write_error(path, context)
    try:
        st = os.statvfs(path.parent)
        if st.f_bavail * st.f_frsize < (1 << 20):
            return write_error(path, OSError(errno.ENOSPC, "no space"))
    except OSError:
        pass
    return WriteError(f"cannot write {path}: the file writer failed ({str(err).strip().splitlines()[0][:160]})")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file + rename. Writing through a Python file object keeps the OSError
    of a failed write (torch's own file writer would turn it into an opaque RuntimeError)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files :func:`atomic_write` left in ``folder`` when a process was killed mid-write
    (call only when no other process writes there, e.g. when a run resumes); returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if TEMP_RE.match(p.name) and p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
