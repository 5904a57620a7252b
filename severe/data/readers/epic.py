"""EPIC-Kitchens-100 csv annotations (``epic-kitchens-100/annotations/``).

Columns are looked up by name (some releases add a leading ``uid``). One :class:`EpicSegment` per row;
``read_epic_split`` turns segments into VideoEntry items keyed ``<video path>#<narration_id>`` with
label ``verb_class`` and the segment's start/stop seconds.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from severe.data.entries import VideoEntry
from severe.errors import SevereError
from severe.data.readers._common import bad_line, read_text

SPLIT_FILES = {"train": "EPIC_100_train.csv", "test": "EPIC_100_validation.csv"}
MEDIA_ROOT = "EPIC-KITCHENS"
NUM_NOUNS = 300
REQUIRED_COLUMNS = ("narration_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp",
                    "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class",
                    "all_nouns", "all_noun_classes")
_TIMESTAMP = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class EpicSegment:
    """One trimmed action segment of an untrimmed EPIC video (times in seconds, frames as in the csv)."""

    narration_id: str
    participant_id: str
    video_id: str
    start_sec: float
    stop_sec: float
    start_frame: int
    stop_frame: int
    narration: str
    verb: str
    verb_class: int
    noun: str
    noun_class: int
    all_nouns: tuple[str, ...]
    all_noun_classes: tuple[int, ...]


def parse_timestamp(text: str) -> float:
    """``HH:mm:ss.SS[S]`` -> seconds (ValueError if malformed)."""
    m = _TIMESTAMP.match(text.strip())
    if not m:
        raise ValueError(f"bad timestamp {text!r}")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, row) of a csv file; SevereError if empty."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [(reader.line_num, row) for row in reader if row]
    if not rows:
        raise SevereError(f"{path}: empty csv (a header row is required)")
    return [c.strip() for c in rows[0][1]], rows[1:]


def read_epic_csv(path: Path, num_verbs: int | None = 97, num_nouns: int | None = NUM_NOUNS) -> list[EpicSegment]:
    """All segments of ``EPIC_100_{train,validation}.csv`` in file order."""
    header, rows = _csv_rows(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise bad_line(path, 1, f"header lacks column(s) {', '.join(missing)}")
    col = {name: header.index(name) for name in REQUIRED_COLUMNS}
    out: list[EpicSegment] = []
    for no, row in rows:
        if len(row) != len(header):
            raise bad_line(path, no, f"expected {len(header)} columns, got {len(row)}")
        get = lambda name: row[col[name]]  # noqa: E731
        try:
            seg = EpicSegment(
                narration_id=get("narration_id"), participant_id=get("participant_id"),
                video_id=get("video_id"),
                start_sec=parse_timestamp(get("start_timestamp")), stop_sec=parse_timestamp(get("stop_timestamp")),
                start_frame=int(get("start_frame")), stop_frame=int(get("stop_frame")),
                narration=get("narration"), verb=get("verb"), verb_class=int(get("verb_class")),
                noun=get("noun"), noun_class=int(get("noun_class")),
                all_nouns=tuple(str(x) for x in ast.literal_eval(get("all_nouns"))),
                all_noun_classes=tuple(int(x) for x in ast.literal_eval(get("all_noun_classes"))),
            )
        except (ValueError, SyntaxError, TypeError) as e:
            raise bad_line(path, no, f"malformed segment row ({e})") from None
        if not 0 <= seg.verb_class < (num_verbs or seg.verb_class + 1):
            raise bad_line(path, no, f"verb_class {seg.verb_class} outside 0..{(num_verbs or 0) - 1}")
        if not 0 <= seg.noun_class < (num_nouns or seg.noun_class + 1):
            raise bad_line(path, no, f"noun_class {seg.noun_class} outside 0..{(num_nouns or 0) - 1}")
        if seg.stop_sec < seg.start_sec or seg.stop_frame < seg.start_frame:
            raise bad_line(path, no, "segment stops before it starts")
        out.append(seg)
    return out


def read_epic_classes(path: Path) -> dict[int, str]:
    """``EPIC_100_{verb,noun}_classes.csv`` (``id,key,instances,category``) -> {id: key}."""
    header, rows = _csv_rows(path)
    if "id" not in header or "key" not in header:
        raise bad_line(path, 1, "header must contain 'id' and 'key'")
    i_id, i_key = header.index("id"), header.index("key")
    out: dict[int, str] = {}
    for no, row in rows:
        try:
            out[int(row[i_id])] = row[i_key]
        except (ValueError, IndexError):
            raise bad_line(path, no, f"malformed class row {row!r}") from None
    return out


@dataclass(frozen=True)
class EpicVideoInfo:
    """One row of ``EPIC_100_video_info.csv``."""

    video_id: str
    duration: float
    fps: float
    resolution: str


def read_epic_video_info(path: Path) -> dict[str, EpicVideoInfo]:
    """``EPIC_100_video_info.csv`` (``video_id,duration,fps,resolution``) -> {video_id: info}."""
    header, rows = _csv_rows(path)
    need = ("video_id", "duration", "fps")
    if any(c not in header for c in need):
        raise bad_line(path, 1, f"header must contain {', '.join(need)}")
    idx = {c: header.index(c) for c in header}
    out: dict[str, EpicVideoInfo] = {}
    for no, row in rows:
        try:
            vid = row[idx["video_id"]]
            out[vid] = EpicVideoInfo(vid, float(row[idx["duration"]]), float(row[idx["fps"]]),
                                     row[idx["resolution"]] if "resolution" in idx else "")
        except (ValueError, IndexError):
            raise bad_line(path, no, f"malformed video-info row {row!r}") from None
    return out


def epic_video_path(participant_id: str, video_id: str) -> str:
    """Relative path of a segment's untrimmed video: ``EPIC-KITCHENS/<P>/videos/<video>.MP4``."""
    return f"{MEDIA_ROOT}/{participant_id}/videos/{video_id}.MP4"


def epic_frames_alternative(video_rel_path: str) -> str:
    """The official RGB-frame folder of a video path: ``.../<P>/rgb_frames/<video_id>``."""
    parts = video_rel_path.split("/")
    if len(parts) != 4 or parts[2] != "videos":
        return video_rel_path
    return f"{parts[0]}/{parts[1]}/rgb_frames/{parts[3].rsplit('.', 1)[0]}"


def read_epic_split(dataset_dir: Path, split: str, *, num_classes: int | None = 97) -> list[VideoEntry]:
    """Segments of ``split`` ("train" or "test" = validation) as VideoEntry (label = verb_class)."""
    segments = read_epic_csv(dataset_dir / "annotations" / SPLIT_FILES[split], num_verbs=num_classes)
    out: list[VideoEntry] = []
    for s in segments:
        rel = epic_video_path(s.participant_id, s.video_id)
        out.append(VideoEntry(path=rel, label=s.verb_class, key=_entry_key(s),
                              start_sec=s.start_sec, end_sec=s.stop_sec))
    return out


def _entry_key(segment: EpicSegment) -> str:
    return f"{epic_video_path(segment.participant_id, segment.video_id)}#{segment.narration_id}"


def read_epic_nouns(dataset_dir: Path, split: str) -> dict[str, int]:
    """``noun_class`` of every segment of ``split``, keyed like the entries of :func:`read_epic_split`."""
    return {_entry_key(s): s.noun_class for s in read_epic_csv(dataset_dir / "annotations" / SPLIT_FILES[split])}
