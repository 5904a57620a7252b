"""Torch datasets of UCFRep segments: letterboxed uint8 frames plus labels.

* :class:`TrainSegments` item ``i`` (a :class:`~severe.repetition.segments.TrainItem`): a dict with
  ``frames`` uint8 [n, 3, S, S] (horizontally flipped with p = 0.5 from (seed, epoch, i)), the per-position
  estimates ``pre``/``next`` (int64 [n]), ``count``, ``length``, ``index`` and ``failed`` (keys of videos
  that could not be decoded before this one was returned). An undecodable video is never replaced
  silently: it is logged, counted, and the item is drawn again from another item chosen from
  (seed, epoch, i, attempt); after ``max_retries`` failures in a row the item raises SevereError.
* :class:`TestSegments` item ``v``: ``frames`` of the whole annotated segment, ``count``, ``length``, ``index``;
  an undecodable test video raises SevereError (the test split must be complete).

Frames are read from ``imgs/<split>/<Class>/<video>/image_%05d.jpg`` (frame number = file number).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from severe.data.decode import DecodeError, VideoReader, make_reader
from severe.data.registry import get_dataset
from severe.errors import SevereError
from severe.repetition.inputs import letterbox
from severe.repetition.segments import RepVideo, TrainItem

log = logging.getLogger(__name__)

_TAG_FLIP, _TAG_RETRY = 21, 22
DATASET_ID = "ucfrep"


def frame_reader() -> VideoReader:
    spec = get_dataset(DATASET_ID)
    return make_reader(spec.media, frames_fps=spec.frames_fps, frame_pattern=spec.frame_pattern, frame_start=1)


def check_frames(dataset_dir: Path, videos: list[RepVideo], reader: VideoReader | None = None) -> list[tuple[RepVideo, str]]:
    """(video, reason) for every video whose frame folder is missing or ends before ``end_frame``."""
    reader = reader or frame_reader()
    bad = []
    for v in videos:
        folder = Path(dataset_dir) / v.key
        if not folder.is_dir():
            bad.append((v, f"no frame folder {folder}"))
            continue
        try:
            with reader.open(folder) as h:  # frame folders: counted and contiguity-checked
                n = h.info.num_frames
        except DecodeError as e:
            bad.append((v, str(e)))
            continue
        if n < v.end_frame:
            bad.append((v, f"{folder} has {n} frames but the annotated segment ends at frame {v.end_frame}"))
    return bad


def load_segment(reader: VideoReader, folder: Path, first: int, last: int, size: int) -> torch.Tensor:
    """Frames ``first..last`` (1-based file numbers) letterboxed to uint8 [n, 3, size, size]."""
    with reader.open(folder) as h:
        if h.info.num_frames < last:
            raise DecodeError(f"{folder}: {h.info.num_frames} frames, frame {last} needed")
        frames = h.read(list(range(first - 1, last)))
    return letterbox(torch.from_numpy(frames).permute(0, 3, 1, 2), size).contiguous()


class TrainSegments(Dataset):
    """The drawn training items (see the module docstring)."""

    def __init__(self, dataset_dir: Path, videos: list[RepVideo], items: list[TrainItem], *, size: int,
                 seed: int, flip: bool = True, max_retries: int = 10, reader: VideoReader | None = None) -> None:
        if not items:
            raise SevereError("no training items")
        self.dataset_dir, self.videos, self.items = Path(dataset_dir), videos, items
        self.size, self.seed, self.flip, self.max_retries = int(size), int(seed), bool(flip), int(max_retries)
        self.reader = reader or frame_reader()
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _item(self, j: int) -> dict:
        it = self.items[j]
        v = self.videos[it.video_index]
        frames = load_segment(self.reader, self.dataset_dir / v.key, it.begin, it.end, self.size)
        if self.flip and np.random.default_rng([self.seed, _TAG_FLIP, self.epoch, j]).random() < 0.5:
            frames = frames.flip(-1)
        a, b = it.begin - v.start_frame, it.end - v.start_frame + 1
        return {"frames": frames, "pre": v.offset_pre[a:b].copy(), "next": v.offset_next[a:b].copy(),
                "count": it.count, "length": it.length, "index": j}

    def __getitem__(self, i: int) -> dict:
        j, failed = int(i), []
        for attempt in range(self.max_retries + 1):
            try:
                item = self._item(j)
            except DecodeError as err:
                key = self.videos[self.items[j].video_index].key
                log.warning("training item %d: skipping undecodable video %s (%s)", i, key, err)
                failed.append(key)
                others = [k for k in range(len(self.items)) if self.items[k].video_index != self.items[j].video_index]
                if not others:
                    break
                j = others[int(np.random.default_rng([self.seed, _TAG_RETRY, self.epoch, i, attempt]).integers(len(others)))]
                continue
            item["failed"] = failed
            return item
        raise SevereError(f"training item {i}: {len(failed)} undecodable videos in a row ({', '.join(failed[:3])}); "
                          f"check the frames")


class TestSegments(Dataset):
    """Whole annotated segments of the test videos."""

    __test__ = False  # not a pytest class

    def __init__(self, dataset_dir: Path, videos: list[RepVideo], *, size: int, reader: VideoReader | None = None) -> None:
        self.dataset_dir, self.videos, self.size = Path(dataset_dir), videos, int(size)
        self.reader = reader or frame_reader()

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        v = self.videos[i]
        try:
            frames = load_segment(self.reader, self.dataset_dir / v.key, v.start_frame, v.end_frame, self.size)
        except DecodeError as err:
            raise SevereError(f"cannot decode test video {v.key} ({err}); the test split must be complete: repair "
                              f"its frames") from None
        return {"frames": frames, "count": v.count, "length": v.length, "index": i}


def collate_list(batch: list[dict]) -> list[dict]:
    """Segments have different lengths: a batch stays a list of items."""
    return list(batch)
