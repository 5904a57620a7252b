"""Diving48 V2 JSON lists ``labels/Diving48_V2_{train,test}.json`` and the 48-entry vocabulary."""

from __future__ import annotations

from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import json_field, load_json

SPLIT_FILES = {"train": "Diving48_V2_train.json", "test": "Diving48_V2_test.json"}


def read_diving48_vocab(path: Path) -> list[tuple[str, ...]]:
    """The class vocabulary: one (takeoff, somersaults, twists, flight) tuple per class id."""
    data = load_json(path)
    if not isinstance(data, list) or not all(isinstance(v, list) and len(v) == 4 for v in data):
        raise SevereError(f"{path}: expected a list of 4-attribute lists")
    return [tuple(str(x) for x in v) for v in data]


def read_diving48_split(dataset_dir: Path, split: str, *, num_classes: int | None = 48) -> list[VideoEntry]:
    """Entries of ``split``; label = ``label``, media ``videos/<vid_name>.avi`` (start/end frames ignored)."""
    path = dataset_dir / "labels" / SPLIT_FILES[split]
    records = load_json(path)
    if not isinstance(records, list):
        raise SevereError(f"{path}: expected a JSON list of clip records")
    entries: list[VideoEntry] = []
    for i, rec in enumerate(records):
        name = str(json_field(rec, "vid_name", path, i))
        label = json_field(rec, "label", path, i)
        if not isinstance(label, int) or isinstance(label, bool) or label < 0 or (
                num_classes is not None and label >= num_classes):
            raise SevereError(f"{path}: record {i} ({name}): bad label {label!r} "
                              f"(expected an integer in 0..{(num_classes or 0) - 1})")
        rel = f"videos/{name}.avi"
        entries.append(VideoEntry(path=rel, label=label, key=rel))
    return entries
