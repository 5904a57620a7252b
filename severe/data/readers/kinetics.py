"""Kinetics-400 TSM-style lists ``labels/{train,val}_videofolder.txt``: ``<class>/<clip> <frames> <label>``."""

from __future__ import annotations

from pathlib import Path

from severe.data.entries import VideoEntry
from severe.data.readers._common import bad_line, check_label, numbered_lines, parse_int

SPLIT_FILES = {"train": "train_videofolder.txt", "test": "val_videofolder.txt"}


def read_videofolder_list(path: Path, num_classes: int | None, media_prefix: str = "VideoData",
                          extension: str = ".avi") -> list[VideoEntry]:
    """Entries of one videofolder list; label = third column, media ``<prefix>/<first column><ext>``."""
    entries: list[VideoEntry] = []
    for no, line in numbered_lines(path):
        parts = line.split()
        if len(parts) != 3:
            raise bad_line(path, no, f"expected '<class>/<clip> <num_frames> <label>', got {line!r}")
        parse_int(parts[1], path, no, "frame count")
        label = check_label(parse_int(parts[2], path, no, "label"), num_classes, path, no)
        rel = f"{media_prefix}/{parts[0]}{extension}"
        entries.append(VideoEntry(path=rel, label=label, key=rel))
    return entries


def read_kinetics_split(dataset_dir: Path, split: str, *, num_classes: int | None = 400) -> list[VideoEntry]:
    """Entries of ``split`` ("train" or "test" = val list)."""
    return read_videofolder_list(dataset_dir / "labels" / SPLIT_FILES[split], num_classes)
