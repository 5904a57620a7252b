"""Charades v1: PySlowFast frame lists with per-frame labels, the official csv and the class list.

Frame lists (``charades/frame_lists/{train,val}.csv``): one row per 24 fps frame, labels = 0-based
classes active at that frame. Official ``Charades_v1_{train,test}.csv``: ``actions`` = ``cNNN start end``
joined by ``;``. ``Charades_v1_classes.txt``: ``cNNN <name>``. Video-level labels = union of frame labels.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, numbered_lines, read_text
from severe.data.readers.frame_list import FrameListVideo, read_frame_list

FPS = 24.0
NUM_CLASSES = 157
FRAME_DIR = "Charades_v1_rgb"
FRAME_LIST_FILES = {"train": "train.csv", "test": "val.csv"}
OFFICIAL_FILES = {"train": "Charades_v1_train.csv", "test": "Charades_v1_test.csv"}
CSV_COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script", "objects",
               "descriptions", "actions", "length")
_CLASS = re.compile(r"^c(\d{3})$")


CharadesVideo = FrameListVideo  # frame paths (relative to Charades_v1_rgb) and per-frame labels


def read_charades_frame_list(path: Path, num_classes: int | None = NUM_CLASSES) -> list[FrameListVideo]:
    """Videos of a Charades frame list in first-appearance order, frames sorted by frame_id."""
    return list(read_frame_list(path, num_classes).values())


def parse_class_id(token: str) -> int:
    """``c092`` -> 92 (ValueError otherwise)."""
    m = _CLASS.match(token)
    if not m:
        raise ValueError(f"bad class id {token!r} (expected cNNN)")
    return int(m.group(1))


def read_charades_classes(path: Path) -> dict[int, str]:
    """``Charades_v1_classes.txt`` -> {class id: name} in file order."""
    out: dict[int, str] = {}
    for no, line in numbered_lines(path):
        token, _, name = line.strip().partition(" ")
        try:
            cid = parse_class_id(token)
        except ValueError as e:
            raise bad_line(path, no, str(e)) from None
        if cid in out:
            raise bad_line(path, no, f"duplicate class c{cid:03d}")
        out[cid] = name.strip()
    if not out:
        raise SevereError(f"{path}: no classes listed")
    return out


@dataclass(frozen=True)
class CharadesAction:
    """One annotated action interval: class id and start/end in seconds."""

    class_id: int
    start: float
    end: float


@dataclass(frozen=True)
class CharadesAnnotation:
    """One row of the official ``Charades_v1_{train,test}.csv``."""

    id: str
    subject: str
    scene: str
    quality: str
    relevance: str
    verified: str
    script: str
    objects: tuple[str, ...]
    descriptions: str
    actions: tuple[CharadesAction, ...]
    length: float

    @property
    def labels(self) -> tuple[int, ...]:
        """Sorted unique class ids of the video's actions."""
        return tuple(sorted({a.class_id for a in self.actions}))


def parse_actions(text: str) -> tuple[CharadesAction, ...]:
    """``c092 11.90 21.20;c147 0.00 12.60`` -> actions (empty text = no action)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        tokens = part.split()
        if len(tokens) != 3:
            raise ValueError(f"bad action {part!r} (expected 'cNNN start end')")
        out.append(CharadesAction(parse_class_id(tokens[0]), float(tokens[1]), float(tokens[2])))
    return tuple(out)


def read_charades_csv(path: Path, num_classes: int | None = NUM_CLASSES) -> list[CharadesAnnotation]:
    """All rows of an official Charades csv (header required, columns looked up by name)."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    rows = [(reader.line_num, r) for r in reader if r]
    if not rows:
        raise SevereError(f"{path}: empty csv (a header row is required)")
    header = rows[0][1]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise bad_line(path, rows[0][0], f"header lacks column(s) {', '.join(missing)}")
    col = {c: header.index(c) for c in CSV_COLUMNS}
    out: list[CharadesAnnotation] = []
    for no, r in rows[1:]:
        if len(r) != len(header):
            raise bad_line(path, no, f"expected {len(header)} columns, got {len(r)}")
        try:
            actions = parse_actions(r[col["actions"]])
            length = float(r[col["length"]])
        except ValueError as e:
            raise bad_line(path, no, str(e)) from None
        for a in actions:
            if num_classes is not None and not 0 <= a.class_id < num_classes:
                raise bad_line(path, no, f"class c{a.class_id:03d} outside 0..{num_classes - 1}")
        out.append(CharadesAnnotation(
            id=r[col["id"]], subject=r[col["subject"]], scene=r[col["scene"]], quality=r[col["quality"]],
            relevance=r[col["relevance"]], verified=r[col["verified"]], script=r[col["script"]],
            objects=tuple(o for o in r[col["objects"]].split(";") if o), descriptions=r[col["descriptions"]],
            actions=actions, length=length))
    return out


def charades_frame_labels(actions: tuple[CharadesAction, ...] | list[CharadesAction], num_frames: int,
                          fps: float = FPS) -> list[tuple[int, ...]]:
    """Per-frame labels regenerated from official actions: frame n (1-based file number) at
    t = (n - 1) / fps carries every action with start <= t <= end."""
    out = []
    for i in range(num_frames):
        t = i / fps
        out.append(tuple(sorted({a.class_id for a in actions if a.start <= t <= a.end})))
    return out


def frame_list_path(dataset_dir: Path, split: str) -> Path:
    """``charades/frame_lists/{train,val}.csv``."""
    return dataset_dir / "frame_lists" / FRAME_LIST_FILES[split]


def read_charades_split(dataset_dir: Path, split: str, *, num_classes: int | None = NUM_CLASSES) -> list[VideoEntry]:
    """One entry per video of the split's frame list; path ``Charades_v1_rgb/<id>``, label -1."""
    videos = read_charades_frame_list(frame_list_path(dataset_dir, split), num_classes)
    return [VideoEntry(path=f"{FRAME_DIR}/{v.video_id}", label=-1, key=f"{FRAME_DIR}/{v.video_id}") for v in videos]


def charades_manifest_labels(dataset_dir: Path, split: str) -> dict[str, str]:
    """Manifest label per entry path: the video's sorted class ids joined by commas ("" = none)."""
    videos = read_charades_frame_list(frame_list_path(dataset_dir, split))
    return {f"{FRAME_DIR}/{v.video_id}": ",".join(str(c) for c in v.labels) for v in videos}
