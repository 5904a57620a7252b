"""AVA v2.2 files: ground-truth and person-detector box csvs, excluded timestamps, label map, frame lists.

Ground truth (no header): ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id`` — one row per
(box, action). Detector boxes: same first six columns, column 7 = action id, empty, or -1 (negative),
column 8 = detector score. The label map is a pbtxt with ``label { name label_id label_type }`` (v2.2)
or ``item { name id }`` (v2.1) blocks. Frame lists: header ``original_vido_id video_id frame_id path
labels`` then space-separated rows.

Box csvs are parsed once, vectorised (:func:`read_boxes_csv` -> :class:`AvaRows` columns, used as is by the
evaluator :mod:`severe.metrics.ava`); :func:`read_ava_ground_truth` / :func:`read_ava_detections` add the
data-side checks (action ids 1..80, -1 or empty for detector boxes, integer person ids) and return
:class:`AvaBox` rows.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, file_signature, numbered_lines, read_text, require_file
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


# ---------------------------------------------------------------------------------------------------
# Box csv files: one parser for the data readers and the evaluator (severe.metrics.ava)


@dataclass(frozen=True, eq=False)
class AvaRows:
    """Box rows of an AVA csv as columns (row order = file order).

    ``videos``: vocabulary of video ids; ``video``: [N] int32 index into it; ``timestamp``: [N] int64
    seconds; ``boxes``: [N, 4] float64 normalised (x1, y1, x2, y2); ``action``: [N] int64 class ids;
    ``score``: [N] float64 or None (for ground truth the 8th column, the person id, lands here; it is
    not used). Build from per-row values with :meth:`from_columns`.
    """

    videos: tuple[str, ...]
    video: np.ndarray
    timestamp: np.ndarray
    boxes: np.ndarray
    action: np.ndarray
    score: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.video)
        checks = {
            "video": (self.video, (n,)),
            "timestamp": (self.timestamp, (n,)),
            "boxes": (self.boxes, (n, 4)),
            "action": (self.action, (n,)),
        }
        if self.score is not None:
            checks["score"] = (self.score, (n,))
        for name, (arr, shape) in checks.items():
            if not isinstance(arr, np.ndarray) or arr.shape != shape:
                got = getattr(arr, "shape", type(arr).__name__)
                raise SevereError(f"AvaRows.{name} must be a numpy array of shape {list(shape)}, got {got}")
        if not np.issubdtype(self.boxes.dtype, np.floating):
            raise SevereError(f"AvaRows.boxes must be floats, got dtype {self.boxes.dtype}")
        for name in ("video", "timestamp", "action"):
            if not np.issubdtype(getattr(self, name).dtype, np.integer):
                raise SevereError(f"AvaRows.{name} must be integers, got dtype {getattr(self, name).dtype}")
        if n and (self.video.min() < 0 or self.video.max() >= len(self.videos)):
            raise SevereError(f"AvaRows.video indices must lie in [0, {len(self.videos) - 1}]")

    def __len__(self) -> int:
        return len(self.video)

    @classmethod
    def from_columns(
        cls,
        video_ids: Sequence[str],
        timestamps: Sequence[int] | np.ndarray,
        boxes: Sequence[Sequence[float]] | np.ndarray,
        action_ids: Sequence[int] | np.ndarray,
        scores: Sequence[float] | np.ndarray | None = None,
    ) -> "AvaRows":
        """Rows from per-row values (video ids as strings, boxes as [N, 4] x1, y1, x2, y2)."""
        vocab: dict[str, int] = {}
        codes = np.fromiter((vocab.setdefault(str(v), len(vocab)) for v in video_ids), np.int32, len(video_ids))
        n = len(codes)
        boxes_arr = np.asarray(boxes, dtype=np.float64).reshape(n, 4) if n else np.zeros((0, 4))
        return cls(
            videos=tuple(vocab),
            video=codes,
            timestamp=np.asarray(timestamps, dtype=np.int64).reshape(n),
            boxes=boxes_arr,
            action=np.asarray(action_ids, dtype=np.int64).reshape(n),
            score=None if scores is None else np.asarray(scores, dtype=np.float64).reshape(n),
        )

    def video_ids(self) -> np.ndarray:
        """Per-row video id strings (object array)."""
        return np.asarray(self.videos, dtype=object)[self.video] if len(self.videos) else np.zeros(0, object)


@dataclass(frozen=True)
class _BoxFormat:
    """What a box csv may hold: column counts, their names (for messages), empty action ids."""

    columns: tuple[int, ...]
    names: str
    empty_action: bool = False  # detector files: an empty action column (stored as EMPTY_ACTION)

    @property
    def expected(self) -> str:
        return f"{' or '.join(map(str, self.columns))} columns ({self.names})"


_EVAL_GROUND_TRUTH = _BoxFormat((7, 8), "video,time,x1,y1,x2,y2,action[,person id]")
_EVAL_DETECTIONS = _BoxFormat((8,), "video,time,x1,y1,x2,y2,action,score")
_GROUND_TRUTH = _BoxFormat((8,), "video,time,x1,y1,x2,y2,action,person")
_DETECTIONS = _BoxFormat((8,), "video,time,x1,y1,x2,y2,action,score", empty_action=True)
EMPTY_ACTION = -(2**63)  # the action id of a row whose action column is empty (detector files)
_EMPTY_TOKEN = str(EMPTY_ACTION).encode()
_CHUNK_BYTES = 32 << 20  # parse 32 MB of rows at a time (bounded memory for 10M-row files)


class _SlowPath(Exception):
    """The vectorised chunk parser met something unusual: redo the chunk line by line."""


def read_boxes_csv(path: str | Path, *, require_score: bool = False) -> AvaRows:
    """An AVA box csv (no header) for the evaluator: ``video_id,timestamp,x1,y1,x2,y2,action_id[,score]``.

    Ground truth has 7 or 8 columns (the 8th, the person id, is read into ``score`` and ignored by the
    evaluator; NaN marks a row without it); detections need the 8th column (``require_score=True``).
    Coordinates must be numbers in [0, 1] with x1 <= x2 and y1 <= y2, timestamps and action ids
    integers, scores finite. Any malformed line -> SevereError naming the file and line. Blank lines are
    skipped; LF or CRLF line ends.

    Parsing is vectorised per 32 MB chunk (bytes split + ``map(float)``); a chunk with anything unusual
    (quotes, blank lines, mixed column counts, bad values) is re-parsed line by line with the csv module,
    which finds and names the offending line.
    """
    rows, has8, _ = _read_box_columns(Path(path), _EVAL_DETECTIONS if require_score else _EVAL_GROUND_TRUTH)
    if not len(rows):
        raise SevereError(f"{path}: no rows (empty box csv)")
    return rows if has8.any() else replace(rows, score=None)  # mixed 7/8-column ground truth: NaN where absent


def _read_box_columns(path: Path, fmt: _BoxFormat) -> tuple[AvaRows, np.ndarray, np.ndarray]:
    """The rows of a box csv (``score`` NaN where a row has no 8th column), the has-8th-column flag and
    the 1-based line number of every row."""
    require_file(path, "box csv")
    data = path.read_bytes()
    vocab: dict[bytes, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    start, line_no = 0, 1
    while start < len(data):
        end = data.find(b"\n", min(start + _CHUNK_BYTES, len(data)))
        end = len(data) if end < 0 else end + 1
        chunk = data[start:end]
        try:
            cols = _parse_chunk_fast(chunk, vocab, fmt)
        except _SlowPath:
            cols = _parse_chunk_slow(chunk, vocab, fmt, path, line_no)
        _validate_chunk(cols, path, line_no)
        parts.append((*cols[:6], cols[6] + line_no))
        line_no += chunk.count(b"\n")
        start = end
    if not parts:
        parts.append(_parse_chunk_slow(b"", vocab, fmt, path, 1))
    video, ts, boxes, action, score, has8, lines = (np.concatenate(c) for c in zip(*parts))
    try:
        videos = tuple(v.decode("utf-8") for v in vocab)
    except UnicodeDecodeError as e:
        raise SevereError(f"{path}: a video id is not UTF-8 text ({e.reason})") from None
    return AvaRows(videos, video.astype(np.int32), ts, boxes, action, score), has8, lines


# Column tuples of the chunk parsers: video code, timestamp, boxes [n, 4], action, score (NaN without an
# 8th column), has-8th-column flag, 0-based line offset of each row inside the chunk.


def _parse_chunk_fast(chunk: bytes, vocab: dict[bytes, int], fmt: _BoxFormat) -> tuple[np.ndarray, ...]:
    if b"\r" in chunk:
        chunk = chunk.replace(b"\r\n", b"\n")
    if b'"' in chunk or b"\r" in chunk:
        raise _SlowPath
    lines = chunk.rstrip(b" \t\n").split(b"\n")  # trailing blank lines: nothing to number
    n = len(lines)
    commas = np.fromiter(map(bytes.count, lines, itertools.repeat(b",")), np.int64, n)
    ncols = int(commas[0]) + 1
    if ncols not in fmt.columns or not (commas == ncols - 1).all():
        raise _SlowPath
    tok = b",".join(lines).split(b",")
    try:
        vids = tok[0::ncols]
        for v in dict.fromkeys(vids):  # few distinct ids: build the codes with C-level lookups
            vocab.setdefault(v, len(vocab))
        video = np.fromiter(map(vocab.__getitem__, vids), np.int64, n)
        ts = np.fromiter(map(int, tok[1::ncols]), np.int64, n)
        boxes = np.empty((n, 4), np.float64)
        for k in range(4):
            boxes[:, k] = np.fromiter(map(float, tok[2 + k :: ncols]), np.float64, n)
        actions = tok[6::ncols]
        if fmt.empty_action:
            actions = [a if a.strip() else _EMPTY_TOKEN for a in actions]
        action = np.fromiter(map(int, actions), np.int64, n)
        score = np.fromiter(map(float, tok[7::8]), np.float64, n) if ncols == 8 else np.full(n, np.nan)
    except ValueError:
        raise _SlowPath from None
    if b"" in vocab:
        raise _SlowPath
    return video, ts, boxes, action, score, np.full(n, ncols == 8), np.arange(n)


def _parse_chunk_slow(
    chunk: bytes, vocab: dict[bytes, int], fmt: _BoxFormat, path: Path, first_line: int
) -> tuple[np.ndarray, ...]:
    rows: list[tuple] = []
    offsets: list[int] = []
    for off, raw in enumerate(chunk.split(b"\n")):
        no = first_line + off
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise bad_line(path, no, f"not UTF-8 text ({e.reason})") from None
        if not line.strip():
            continue
        row = next(csv.reader([line]))
        if len(row) not in fmt.columns:
            raise bad_line(path, no, f"expected {fmt.expected}, got {len(row)}: {line.strip()[:80]!r}")
        if not row[0]:
            raise bad_line(path, no, "empty video id")
        try:
            ts = int(row[1])
        except ValueError:
            raise bad_line(path, no, f"timestamp must be an integer, got {row[1]!r}") from None
        try:
            box = tuple(float(v) for v in row[2:6])
        except ValueError:
            raise bad_line(path, no, f"box must be 4 numbers, got {row[2:6]!r}") from None
        try:
            action = EMPTY_ACTION if fmt.empty_action and not row[6].strip() else int(row[6])
        except ValueError:
            raise bad_line(path, no, f"action id must be an integer, got {row[6]!r}") from None
        try:
            score = float(row[7]) if len(row) == 8 else math.nan
        except ValueError:
            raise bad_line(path, no, f"8th column (score / person id) must be a number, got {row[7]!r}") from None
        rows.append((vocab.setdefault(row[0].encode("utf-8"), len(vocab)), ts, box, action, score, len(row) == 8))
        offsets.append(off)
    n = len(rows)
    return (
        np.fromiter((r[0] for r in rows), np.int64, n),
        np.fromiter((r[1] for r in rows), np.int64, n),
        np.array([r[2] for r in rows], np.float64).reshape(n, 4),
        np.fromiter((r[3] for r in rows), np.int64, n),
        np.fromiter((r[4] for r in rows), np.float64, n),
        np.fromiter((r[5] for r in rows), bool, n),
        np.asarray(offsets, np.int64),
    )


def _validate_chunk(cols: tuple[np.ndarray, ...], path: Path, first_line: int) -> None:
    _, _, boxes, _, score, has8, offsets = cols
    x1, y1, x2, y2 = boxes.T
    bad = ~((x1 >= 0) & (x1 <= x2) & (x2 <= 1) & (y1 >= 0) & (y1 <= y2) & (y2 <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise bad_line(path, first_line + int(offsets[i]),
                       f"box {tuple(boxes[i].tolist())} is not normalised (0 <= x1 <= x2 <= 1, 0 <= y1 <= y2 <= 1)")
    bad = has8 & ~np.isfinite(score)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise bad_line(path, first_line + int(offsets[i]), f"score (8th column) must be finite, got {score[i]}")


def read_exclusions(path: str | Path) -> set[tuple[str, int]]:
    """Excluded-timestamps csv (``video_id,timestamp`` per line) -> {(video_id, second)}."""
    path = Path(path)
    out: set[tuple[str, int]] = set()
    for no, line in numbered_lines(path, "excluded-timestamps file"):
        row = next(csv.reader([line]))
        if len(row) != 2 or not row[0]:
            raise bad_line(path, no, f"expected 'video_id,timestamp', got {line.strip()[:80]!r}")
        try:
            out.add((row[0], int(row[1])))
        except ValueError:
            raise bad_line(path, no, f"timestamp must be an integer, got {row[1]!r}") from None
    return out


def _boxes(rows: AvaRows, **extra) -> list[AvaBox]:
    """AvaBox per row (file order); ``extra``: per-row lists of the keyword fields."""
    names, actions = rows.video_ids().tolist(), rows.action.tolist()
    keys = list(extra)
    return [AvaBox(v, t, tuple(b), None if a == EMPTY_ACTION else a, **dict(zip(keys, e)))
            for v, t, b, a, *e in zip(names, rows.timestamp.tolist(), rows.boxes.tolist(), actions, *extra.values())]


def _check_actions(rows: AvaRows, lines: np.ndarray, path: Path, negatives: bool) -> None:
    ok = (rows.action >= 1) & (rows.action <= NUM_ACTIONS)
    if negatives:
        ok |= (rows.action == -1) | (rows.action == EMPTY_ACTION)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise bad_line(path, int(lines[i]), f"action id {int(rows.action[i])} outside 1..{NUM_ACTIONS}"
                       + (" (or -1 for a negative)" if negatives else ""))


def read_ava_ground_truth(path: Path) -> list[AvaBox]:
    """Rows of ``ava_{train,val}_v2.2.csv`` (8 columns, action id 1..80) in file order (parse cached)."""
    return list(_ground_truth(file_signature(path)))


@lru_cache(maxsize=4)
def _ground_truth(signature: tuple) -> tuple[AvaBox, ...]:
    path = Path(signature[0])
    rows, _, lines = _read_box_columns(path, _GROUND_TRUTH)
    _check_actions(rows, lines, path, negatives=False)
    person = rows.score
    fractional = person != np.floor(person)
    if fractional.any():
        i = int(np.flatnonzero(fractional)[0])
        raise bad_line(path, int(lines[i]), f"person id must be an integer, got {person[i]!r}")
    return tuple(_boxes(rows, person_id=person.astype(np.int64).tolist()))


def read_ava_detections(path: Path, min_score: float | None = None) -> list[AvaBox]:
    """Rows of a person-detector box csv in file order, keeping those with score >= ``min_score``
    (action id 1..80, -1 for a negative, or empty)."""
    rows, _, lines = _read_box_columns(Path(path), _DETECTIONS)
    _check_actions(rows, lines, Path(path), negatives=True)
    boxes = _boxes(rows, score=rows.score.tolist())
    return boxes if min_score is None else [b for b in boxes if b.score >= min_score]


def read_ava_excluded(path: Path) -> set[str]:
    """Image keys ``"<video_id>,<%04d second>"`` listed in an excluded-timestamps csv."""
    return {f"{v},{t:04d}" for v, t in read_exclusions(path)}


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
