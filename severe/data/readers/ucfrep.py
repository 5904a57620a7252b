"""UCFRep repetition-counting annotations (``ucfrep/annotations/``).

``{train,val}/<video>.mat`` holds a MATLAB struct ``label`` (duration, start_frame, end_frame,
temporal_bound_num, temporal_bound, offset_next_estimate, offset_pre_estimate); the ground-truth count
is len(temporal_bound) - 1. ``repetition_label/<Class>.txt`` repeats the boundaries as text: a video
name line followed by a line of boundary frames, blocks separated by blank lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, numbered_lines, require_file

SPLIT_DIRS = {"train": "train", "test": "val"}
MAT_FIELDS = ("duration", "start_frame", "end_frame", "temporal_bound_num", "temporal_bound",
              "offset_next_estimate", "offset_pre_estimate")
_VIDEO = re.compile(r"^v_(.+)_g\d+_c\d+$")


@dataclass(frozen=True)
class UcfRepAnnotation:
    """One annotated video: the segment [start_frame, end_frame] (1-based, inclusive), the cycle
    boundaries (frames) and the per-frame previous/next cycle-length estimates (-1 = undefined)."""

    video: str
    class_name: str
    duration: int
    start_frame: int
    end_frame: int
    temporal_bound: tuple[int, ...]
    offset_next_estimate: np.ndarray
    offset_pre_estimate: np.ndarray

    @property
    def count(self) -> int:
        """Ground-truth repetition count = number of boundary intervals."""
        return len(self.temporal_bound) - 1


def ucfrep_class_name(video: str) -> str:
    """Class part of ``v_<Class>_gGG_cCC`` (file-name spelling, e.g. ``HandStandPushups``)."""
    m = _VIDEO.match(video)
    if not m:
        raise SevereError(f"UCFRep video name {video!r} does not match 'v_<Class>_gGG_cCC'")
    return m.group(1)


def _int_vector(value: object) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError("non-finite values")
    return np.rint(arr).astype(np.int64)


def read_ucfrep_mat(path: Path) -> UcfRepAnnotation:
    """Parse one ``<video>.mat`` annotation (SevereError naming the file and field when malformed)."""
    require_file(path)
    try:
        mat = scipy.io.loadmat(str(path), simplify_cells=True)
    except Exception as e:  # scipy raises several types for corrupt files
        raise SevereError(f"{path}: cannot read MATLAB file ({e})") from None
    label = mat.get("label")
    if not isinstance(label, dict):
        raise SevereError(f"{path}: no MATLAB struct 'label'")
    missing = [f for f in MAT_FIELDS if f not in label]
    if missing:
        raise SevereError(f"{path}: struct 'label' lacks field(s) {', '.join(missing)}")
    try:
        vec = {f: _int_vector(label[f]) for f in MAT_FIELDS}
    except (TypeError, ValueError) as e:
        raise SevereError(f"{path}: non-numeric field in struct 'label' ({e})") from None
    scalars = {}
    for f in ("duration", "start_frame", "end_frame"):
        if vec[f].size != 1:
            raise SevereError(f"{path}: field {f} must be a scalar, got {vec[f].size} values")
        scalars[f] = int(vec[f][0])
    bounds = tuple(int(b) for b in vec["temporal_bound"])
    if len(bounds) < 2 or any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:])):
        raise SevereError(f"{path}: temporal_bound must be >= 2 increasing frames, got {list(bounds)}")
    if scalars["end_frame"] < scalars["start_frame"]:
        raise SevereError(f"{path}: end_frame {scalars['end_frame']} < start_frame {scalars['start_frame']}")
    video = path.stem
    return UcfRepAnnotation(video=video, class_name=ucfrep_class_name(video), duration=scalars["duration"],
                            start_frame=scalars["start_frame"], end_frame=scalars["end_frame"],
                            temporal_bound=bounds, offset_next_estimate=vec["offset_next_estimate"],
                            offset_pre_estimate=vec["offset_pre_estimate"])


def read_repetition_labels(path: Path) -> dict[str, tuple[int, ...]]:
    """``repetition_label/<Class>.txt`` -> {video name: boundary frames}, in file order."""
    out: dict[str, tuple[int, ...]] = {}
    pending: tuple[int, str] | None = None
    for no, line in numbered_lines(path):
        text = line.strip()
        if pending is None:
            if not _VIDEO.match(text):
                raise bad_line(path, no, f"expected a video name 'v_<Class>_gGG_cCC', got {text!r}")
            pending = (no, text)
            continue
        try:
            bounds = tuple(int(t) for t in text.split())
        except ValueError:
            raise bad_line(path, no, f"expected boundary frames (integers) for {pending[1]}, got {text!r}") from None
        if len(bounds) < 2:
            raise bad_line(path, no, f"{pending[1]}: at least two boundaries are needed")
        out[pending[1]] = bounds
        pending = None
    if pending is not None:
        raise bad_line(path, pending[0], f"video {pending[1]} has no boundary line")
    return out


def ucfrep_mat_files(dataset_dir: Path, split: str) -> list[Path]:
    """The split's annotation files ``annotations/{train,val}/*.mat`` sorted by name."""
    folder = dataset_dir / "annotations" / SPLIT_DIRS[split]
    if not folder.is_dir():
        raise SevereError(f"missing UCFRep annotation folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".mat" and not p.name.startswith("."))
    if not files:
        raise SevereError(f"{folder}: no .mat annotation files")
    return files


def ucfrep_frame_dir(split: str, video: str) -> str:
    """Relative frame folder ``imgs/{train,val}/<Class>/<video>``."""
    return f"imgs/{SPLIT_DIRS[split]}/{ucfrep_class_name(video)}/{video}"


def read_ucfrep_split(dataset_dir: Path, split: str, *, num_classes: int | None = None) -> list[VideoEntry]:
    """One entry per annotated video of the split (sorted by name); label = repetition count."""
    out = []
    for path in ucfrep_mat_files(dataset_dir, split):
        ann = read_ucfrep_mat(path)
        rel = ucfrep_frame_dir(split, ann.video)
        out.append(VideoEntry(path=rel, label=ann.count, key=rel))
    return out


def read_ucfrep_annotations(dataset_dir: Path, split: str) -> list[UcfRepAnnotation]:
    """All annotations of the split (sorted by video name)."""
    return [read_ucfrep_mat(p) for p in ucfrep_mat_files(dataset_dir, split)]
