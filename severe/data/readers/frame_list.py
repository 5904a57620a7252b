"""PySlowFast frame lists (AVA and Charades): header ``original_vido_id video_id frame_id path labels``.

Rows are space-separated; ``labels`` is a comma-separated list of class ids, optionally quoted
(``""`` = none) and may be absent. Real Charades lists have millions of rows, so the file is streamed,
identical label texts share one tuple, and the parse of an unchanged file is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from severe.errors import SevereError
from severe.data.readers._common import bad_line, file_signature, require_file

HEADER = ("original_vido_id", "video_id", "frame_id", "path", "labels")


@dataclass(frozen=True)
class FrameListVideo:
    """The frames of one video: relative paths sorted by frame_id and the sorted class ids active at
    each frame (empty tuples when the list carries no labels)."""

    video_id: str
    video_index: int
    frames: tuple[str, ...]
    frame_labels: tuple[tuple[int, ...], ...]

    @property
    def labels(self) -> tuple[int, ...]:
        """Video-level labels: the sorted union of all frame labels (empty for a video without actions)."""
        return tuple(sorted({c for fl in set(self.frame_labels) for c in fl}))

    def labels_between(self, first: int, last: int) -> tuple[int, ...]:
        """Union of frame labels of frame positions first..last (inclusive, clamped to the video)."""
        lo, hi = max(first, 0), min(last, len(self.frame_labels) - 1)
        return tuple(sorted({c for fl in self.frame_labels[lo:hi + 1] for c in fl}))


def _parse_labels(text: str, path: Path, no: int, num_classes: int | None) -> tuple[int, ...]:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not text:
        return ()
    try:
        ids = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise bad_line(path, no, f"labels must be comma-separated integers, got {text!r}") from None
    for i in ids:
        if i < 0 or (num_classes is not None and i >= num_classes):
            raise bad_line(path, no, f"label {i} outside 0..{(num_classes or 0) - 1}")
    return tuple(ids)


def _parse(path: Path, num_classes: int | None) -> dict[str, FrameListVideo]:
    grouped: dict[str, tuple[int, list[int], list[str], list[tuple[int, ...]], list[int]]] = {}
    label_cache: dict[str, tuple[int, ...]] = {}
    header_seen = False
    try:
        with open(path, encoding="utf-8", newline=None) as f:
            for no, line in enumerate(f, start=1):
                parts = line.split()
                if not parts:
                    continue
                if not header_seen:
                    if tuple(parts[:4]) != HEADER[:4]:
                        raise bad_line(path, no, f"header must be '{' '.join(HEADER)}'")
                    header_seen = True
                    continue
                if len(parts) < 4:
                    raise bad_line(path, no, f"expected '{' '.join(HEADER)}', got {line.strip()!r}")
                text = "".join(parts[4:])
                labels = label_cache.get(text)
                if labels is None:
                    labels = label_cache.setdefault(text, _parse_labels(text, path, no, num_classes))
                try:
                    vindex, fid = int(parts[1]), int(parts[2])
                except ValueError:
                    raise bad_line(path, no, f"video_id and frame_id must be integers, got {line.strip()!r}") from None
                video = grouped.get(parts[0])
                if video is None:
                    video = grouped[parts[0]] = (vindex, [], [], [], [])
                video[1].append(fid)
                video[2].append(parts[3])
                video[3].append(labels)
                video[4].append(no)
    except UnicodeDecodeError as e:
        raise SevereError(f"{path}: not UTF-8 text ({e.reason})") from None
    if not header_seen:
        raise SevereError(f"{path}: empty frame list (a header row is required)")
    out: dict[str, FrameListVideo] = {}
    for vid, (vindex, fids, paths, labels, lines) in grouped.items():
        order = sorted(range(len(fids)), key=fids.__getitem__)
        for a, b in zip(order, order[1:]):
            if fids[a] == fids[b]:
                raise bad_line(path, max(lines[a], lines[b]), f"video {vid}: duplicate frame_id {fids[b]}")
        out[vid] = FrameListVideo(vid, vindex, tuple(paths[i] for i in order), tuple(labels[i] for i in order))
    return out


@lru_cache(maxsize=4)
def _cached(signature: tuple, num_classes: int | None) -> dict[str, FrameListVideo]:
    return _parse(Path(signature[0]), num_classes)


def read_frame_list(path: Path, num_classes: int | None = None) -> dict[str, FrameListVideo]:
    """Videos of a frame list in first-appearance order (SevereError naming file and line if malformed).

    Labels are checked against [0, num_classes) when given. The parse of an unchanged file is cached.
    """
    require_file(path, "frame list")
    return dict(_cached(file_signature(path), num_classes))
