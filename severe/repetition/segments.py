"""UCFRep videos for counting, and the seeded training sub-segments (docs/tasks.md §3.4, docs/datasets.md §12).

A :class:`RepVideo` is the annotated segment ``[start_frame, end_frame]`` (1-based, inclusive) of one
video with its cycle boundaries and per-frame cycle-length estimates; only that segment is ever used.
Positions inside a segment are 0-based (position 0 = ``start_frame``).

Training items (:func:`draw_train_items`): per training video, ``per_video`` sub-segments drawn once
from a generator seeded with (seed, video index). With boundaries ``b_0 .. b_{n-1}``: a first
boundary index ``i`` uniform in ``0 .. n-3`` and an end index ``e`` uniform in ``i+2 .. n``; the start is
``start_frame`` when ``i = 0`` else uniform in ``[b_{i-1}, b_i]``, the end ``end_frame`` when ``e = n``
else uniform in ``[b_{e-1}, b_e]``; count ``e - i`` (the original's rule). An item longer than the cap
is cut to ``begin + cap - 1``; the original kept the uncut count, here (``correct_capped=True``) the
end index is recomputed from the cut end (``e' = `` number of boundaries before the last frame,
``bisect_left``) and the count becomes ``max(e' - i, 1)``.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from severe.data.readers.ucfrep import UcfRepAnnotation, read_ucfrep_annotations, ucfrep_frame_dir
from severe.errors import SevereError

log = logging.getLogger(__name__)

_TAG_ITEMS = 11  # stream tag of the sub-segment draws (distinct from other derived streams)


@dataclass(frozen=True)
class RepVideo:
    """One annotated video restricted to its segment."""

    video: str
    key: str  # frame folder relative to the dataset folder: imgs/<split>/<Class>/<video>
    start_frame: int
    end_frame: int
    bounds: tuple[int, ...]
    offset_next: np.ndarray  # per segment position: next cycle length - 1 (-1 undefined)
    offset_pre: np.ndarray  # per segment position: previous cycle length - 1 (-1 undefined)

    @property
    def length(self) -> int:
        return self.end_frame - self.start_frame + 1

    @property
    def count(self) -> int:
        return len(self.bounds) - 1


@dataclass(frozen=True)
class TrainItem:
    """One training sub-segment ``[begin, end]`` (frame numbers) of video ``video_index``."""

    video_index: int
    begin: int
    end: int
    count: int  # label used for training (corrected when cut to the cap, unless disabled)
    uncut_count: int  # the original's label (e - i)
    capped: bool
    first_boundary: int = 0  # i
    end_boundary: int = 0  # e (before any cut)

    @property
    def length(self) -> int:
        return self.end - self.begin + 1


def rep_video(ann: UcfRepAnnotation, split: str, *, need_estimates: bool) -> tuple[RepVideo, list[str]]:
    """A :class:`RepVideo` from a parsed annotation, and notes about tolerated inconsistencies.

    ``need_estimates`` (training): the per-frame estimates must cover the whole segment.
    """
    n = ann.end_frame - ann.start_frame + 1
    notes = []
    if ann.duration != n:
        notes.append(f"{ann.video}: duration {ann.duration} != end_frame - start_frame + 1 = {n}; the segment "
                     f"[start_frame, end_frame] is used")
    nxt, pre = np.asarray(ann.offset_next_estimate, np.int64), np.asarray(ann.offset_pre_estimate, np.int64)
    if need_estimates and (len(nxt) < n or len(pre) < n):
        raise SevereError(f"UCFRep {split} annotation {ann.video}.mat: offset estimates cover {min(len(nxt), len(pre))} "
                          f"frames but the segment has {n}; the annotation file is damaged")
    key = ucfrep_frame_dir(split, ann.video)
    video = RepVideo(ann.video, key, ann.start_frame, ann.end_frame, tuple(ann.temporal_bound), nxt[:n], pre[:n])
    return video, notes


def load_videos(dataset_dir: Path, split: str) -> tuple[list[RepVideo], list[str], list[str]]:
    """(videos with count >= 2, skipped video names, notes) of ``split`` ("train" or "test"), by name.

    Videos with fewer than 3 boundaries (count < 2) are skipped as in the original; callers record them.
    """
    videos, skipped, notes = [], [], []
    for ann in read_ucfrep_annotations(Path(dataset_dir), split):
        if len(ann.temporal_bound) < 3:
            skipped.append(ann.video)
            continue
        video, extra = rep_video(ann, split, need_estimates=split == "train")
        videos.append(video)
        notes += extra
    if not videos:
        raise SevereError(f"UCFRep {split}: no video with at least two repetitions under {dataset_dir}")
    return videos, skipped, notes


def recount_after_cut(bounds: tuple[int, ...], first_index: int, end: int) -> int:
    """Count of a sub-segment whose first boundary index is ``first_index`` and which now ends at ``end``."""
    e = min(bisect.bisect_left(bounds, end), len(bounds))
    return max(e - first_index, 1)


def draw_video_items(video: RepVideo, video_index: int, per_video: int, max_frames: int, seed: int,
                     correct_capped: bool = True) -> list[TrainItem]:
    """The ``per_video`` sub-segments of one video (see the module docstring); deterministic in
    (seed, video_index)."""
    b, n = video.bounds, len(video.bounds)
    if n < 3:
        raise SevereError(f"{video.video}: needs at least 3 cycle boundaries for training sub-segments, has {n}")
    rng = np.random.default_rng([seed, _TAG_ITEMS, video_index])
    lo, hi = video.start_frame, video.end_frame
    items = []
    for _ in range(per_video):
        i = int(rng.integers(0, n - 2))  # 0 .. n-3
        e = int(rng.integers(i + 2, n + 1))  # i+2 .. n
        begin = lo if i == 0 else int(rng.integers(b[i - 1], b[i] + 1))
        end = hi if e == n else int(rng.integers(b[e - 1], b[e] + 1))
        begin, end = min(max(begin, lo), hi), min(max(end, lo), hi)
        count = uncut = e - i
        capped = end - begin + 1 > max_frames
        if capped:
            end = begin + max_frames - 1
            if correct_capped:
                count = recount_after_cut(b, i, end)
        items.append(TrainItem(video_index, begin, end, count, uncut, capped, i, e))
    return items


def draw_train_items(videos: list[RepVideo], per_video: int, max_frames: int, seed: int,
                     correct_capped: bool = True) -> list[TrainItem]:
    """All training items, video by video (``per_video`` each)."""
    out: list[TrainItem] = []
    for v, video in enumerate(videos):
        out += draw_video_items(video, v, per_video, max_frames, seed, correct_capped)
    return out


def items_table(videos: list[RepVideo], items: list[TrainItem]) -> str:
    """CSV text of the drawn items (written next to the results: the sub-segments are part of the run)."""
    lines = ["video,begin_frame,end_frame,count,uncut_count,capped"]
    lines += [f"{videos[it.video_index].video},{it.begin},{it.end},{it.count},{it.uncut_count},{int(it.capped)}"
              for it in items]
    return "\n".join(lines) + "\n"


def item_summary(items: list[TrainItem]) -> dict:
    capped = [it for it in items if it.capped]
    changed = [it for it in capped if it.count != it.uncut_count]
    return {"items": len(items), "capped": len(capped), "count_corrected": len(changed),
            "mean_correction": float(np.mean([it.uncut_count - it.count for it in changed])) if changed else 0.0}
