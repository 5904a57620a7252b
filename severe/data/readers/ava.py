"""AVA v2.2 files: ground-truth and person-detector box csvs, excluded timestamps, label map, frame lists.

Ground truth (no header): ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id`` — one row per
(box, action). Detector boxes: same first six columns, column 7 = action id, empty, or -1 (negative),
column 8 = detector score. The label map is a pbtxt with ``label { name label_id label_type }`` (v2.2)
or ``item { name id }`` (v2.1) blocks. Frame lists: header ``original_vido_id video_id frame_id path
labels`` then space-separated rows.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, file_signature, read_text
from severe.data.readers.frame_list import FrameListVideo, read_frame_list

FPS = 30
FIRST_SECOND = 900
ANNOTATION_DIR = "annotations"
DETECTION_DIR = "person_box_67091280_iou90"
GT_FILES = {"train": "ava_train_v2.2.csv", "test": "ava_val_v2.2.csv"}
EXCLUDED_FILES = {"train": "ava_train_excluded_timestamps_v2.2.csv", "test": "ava_val_excluded_timestamps_v2.2.csv"}
DETECTION_FILES = {"train": "ava_detection_train_boxes_and_labels_include_negative_v2.2.csv",
                   "test": "ava_detection_val_boxes_and_labels.csv"}
LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
FRAME_LIST_FILES = {"train": "train.csv", "test": "val.csv"}
NUM_ACTIONS = 80


@dataclass(frozen=True)
class AvaBox:
    """One csv row: a normalised box (x1, y1, x2, y2) at keyframe (video_id, timestamp).

    ``action_id`` is 1..80, -1 for a negative detector box, None when the column is empty.
    ``person_id`` is set for ground truth, ``score`` for detector boxes.
    """

    video_id: str
    timestamp: int
    box: tuple[float, float, float, float]
    action_id: int | None
    person_id: int | None = None
    score: float | None = None

    @property
    def key(self) -> str:
        """The evaluator's image key ``"<video_id>,<%04d second>"``."""
        return f"{self.video_id},{self.timestamp:04d}"


def _csv_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line of a header-less csv."""
    lines = read_text(path).splitlines()
    return [(no, row) for no, row in enumerate(csv.reader(lines), start=1) if row and any(f.strip() for f in row)]


def _parse_box_row(row: list[str], path: Path, no: int) -> tuple[str, int, tuple[float, float, float, float]]:
    try:
        ts = int(row[1])
        box = tuple(float(v) for v in row[2:6])
    except ValueError:
        raise bad_line(path, no, f"timestamp must be an integer and box 4 numbers, got {row[:6]!r}") from None
    if not all(0.0 <= v <= 1.0 for v in box) or box[2] < box[0] or box[3] < box[1]:
        raise bad_line(path, no, f"box {box} is not normalised (0 <= x1 <= x2 <= 1, 0 <= y1 <= y2 <= 1)")
    return row[0], ts, box  # type: ignore[return-value]


def read_ava_ground_truth(path: Path) -> list[AvaBox]:
    """Rows of ``ava_{train,val}_v2.2.csv`` (8 columns, action id 1..80) in file order (parse cached)."""
    return list(_ground_truth(file_signature(path)))


@lru_cache(maxsize=4)
def _ground_truth(signature: tuple) -> tuple[AvaBox, ...]:
    path = Path(signature[0])
    out: list[AvaBox] = []
    for no, row in _csv_lines(path):
        if len(row) != 8:
            raise bad_line(path, no, f"expected 8 columns (video,time,x1,y1,x2,y2,action,person), got {len(row)}")
        vid, ts, box = _parse_box_row(row, path, no)
        try:
            action, person = int(row[6]), int(row[7])
        except ValueError:
            raise bad_line(path, no, f"action id and person id must be integers, got {row[6:]!r}") from None
        if not 1 <= action <= NUM_ACTIONS:
            raise bad_line(path, no, f"action id {action} outside 1..{NUM_ACTIONS}")
        out.append(AvaBox(vid, ts, box, action, person_id=person))
    return tuple(out)


def read_ava_detections(path: Path, min_score: float | None = None) -> list[AvaBox]:
    """Rows of a person-detector box csv in file order, keeping those with score >= ``min_score``."""
    out: list[AvaBox] = []
    for no, row in _csv_lines(path):
        if len(row) != 8:
            raise bad_line(path, no, f"expected 8 columns (video,time,x1,y1,x2,y2,action,score), got {len(row)}")
        vid, ts, box = _parse_box_row(row, path, no)
        try:
            action = int(row[6]) if row[6].strip() else None
            score = float(row[7])
        except ValueError:
            raise bad_line(path, no, f"action id must be an integer or empty and score a number, got {row[6:]!r}") from None
        if action is not None and action != -1 and not 1 <= action <= NUM_ACTIONS:
            raise bad_line(path, no, f"action id {action} outside 1..{NUM_ACTIONS} (or -1 for a negative)")
        if min_score is None or score >= min_score:
            out.append(AvaBox(vid, ts, box, action, score=score))
    return out


def read_ava_excluded(path: Path) -> set[str]:
    """Image keys ``"<video_id>,<%04d second>"`` listed in an excluded-timestamps csv."""
    out: set[str] = set()
    for no, row in _csv_lines(path):
        if len(row) != 2:
            raise bad_line(path, no, f"expected 'video_id,timestamp', got {row!r}")
        try:
            out.add(f"{row[0]},{int(row[1]):04d}")
        except ValueError:
            raise bad_line(path, no, f"timestamp must be an integer, got {row[1]!r}") from None
    return out


_BLOCK = re.compile(r"\b(label|item)\s*\{([^{}]*)\}", re.S)
_NAME = re.compile(r"\b(?:name|display_name)\s*:\s*\"((?:[^\"\\]|\\.)*)\"")
_ID = re.compile(r"\b(?:label_id|id)\s*:\s*(-?\d+)")


def read_ava_label_map(path: Path) -> dict[int, str]:
    """Label map pbtxt -> {action id: name} in file order; both v2.2 and v2.1 block styles."""
    text = re.sub(r"(?m)#.*$", "", read_text(path))
    out: dict[int, str] = {}
    for m in _BLOCK.finditer(text):
        body = m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        name, idm = _NAME.search(body), _ID.search(body)
        if not name or not idm:
            raise bad_line(path, line, f"'{m.group(1)}' block needs a name and an id: {body.strip()!r}")
        aid = int(idm.group(1))
        if aid in out:
            raise bad_line(path, line, f"duplicate id {aid}")
        out[aid] = name.group(1)
    rest = _BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for line_no, line in enumerate(rest.splitlines(), start=1):
        if line.strip():
            raise bad_line(path, line_no, f"unexpected text outside label blocks: {line.strip()[:60]!r}")
    if not out:
        raise SevereError(f"{path}: no 'label {{...}}' or 'item {{...}}' blocks found")
    return out


AvaFrameList = FrameListVideo  # frames of one video (labels column unused for AVA)


def read_ava_frame_list(path: Path) -> dict[str, FrameListVideo]:
    """``ava/frame_lists/{train,val}.csv`` -> {video_id: frames in frame order}, videos in file order."""
    return read_frame_list(path)  # a fresh dict (the parse itself is cached)


def keyframe_index(timestamp: int) -> int:
    """0-based position of keyframe second ``timestamp`` in a video's frame list: (s - 900) * 30."""
    return (timestamp - FIRST_SECOND) * FPS


def group_by_keyframe(boxes: list[AvaBox]) -> dict[str, list[AvaBox]]:
    """Boxes grouped by image key ``"<video_id>,<%04d second>"`` (file order kept inside a group)."""
    out: dict[str, list[AvaBox]] = {}
    for b in boxes:
        out.setdefault(b.key, []).append(b)
    return out


def read_ava_split(dataset_dir: Path, split: str, *, num_classes: int | None = None) -> list[VideoEntry]:
    """One entry per video of the split's ground-truth csv (first-appearance order); path ``frames/<id>``."""
    rows = read_ava_ground_truth(dataset_dir / ANNOTATION_DIR / GT_FILES[split])
    videos = dict.fromkeys(b.video_id for b in rows)
    return [VideoEntry(path=f"frames/{v}", label=-1, key=f"frames/{v}") for v in videos]


def ava_manifest_labels(dataset_dir: Path, split: str) -> dict[str, str]:
    """Manifest label per entry path: the number of ground-truth rows of that video in the split."""
    rows = read_ava_ground_truth(dataset_dir / ANNOTATION_DIR / GT_FILES[split])
    counts = Counter(b.video_id for b in rows)
    return {f"frames/{v}": str(n) for v, n in counts.items()}
