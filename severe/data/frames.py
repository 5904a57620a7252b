"""Frames of frame-list datasets (AVA, Charades) read through :class:`FrameFolderReader`.

A video's frames are addressed by their **position in the video's frame list** (0-based, the PySlowFast
convention); the folder ``<frames_dir>/<video_id>/`` must hold exactly the frames the list names, numbered
contiguously from 1 with the dataset's pattern (checked once per video, SevereError otherwise). Used by
AVA (:mod:`severe.detection`) and Charades (:mod:`severe.multilabel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import torch

from severe.data.decode import FrameFolderReader
from severe.data.readers.frame_list import FrameListVideo
from severe.errors import SevereError

__all__ = ["FrameVideos"]


class FrameVideos:
    """Read frames of the videos of one or more frame lists from ``frames_dir``.

    ``videos``: the frame-list videos (their ``frames`` paths are relative to ``frames_dir``);
    ``fps``/``pattern``: the dataset's native frame rate and file-name pattern (registry).
    """

    def __init__(self, frames_dir: Path, videos: Iterable[FrameListVideo], fps: float, pattern: str,
                 source: str = "frame list") -> None:
        self.frames_dir = Path(frames_dir)
        self.reader = FrameFolderReader(fps, pattern, start=1)
        self.pattern = pattern
        self.counts: dict[str, int] = {}
        for v in videos:
            self._check_list(v, source)
            self.counts[v.video_id] = len(v.frames)

    def _check_list(self, video: FrameListVideo, source: str) -> None:
        n = len(video.frames)
        if n == 0:
            raise SevereError(f"{source}: video {video.video_id} lists no frame")
        for pos in (0, n - 1):
            expected = f"{video.video_id}/{self.pattern.format(pos + 1, index=pos + 1, name=video.video_id)}"
            if video.frames[pos].replace("\\", "/") != expected:
                raise SevereError(
                    f"{source}: video {video.video_id} frame position {pos} is {video.frames[pos]!r}, expected "
                    f"{expected!r} (frames must be listed contiguously from 1 as {self.pattern!r})")

    def folder(self, video_id: str) -> Path:
        return self.frames_dir / video_id

    def check_present(self, video_ids: Iterable[str] | None = None) -> None:
        """SevereError naming the first missing frame folder (and how many are missing)."""
        ids = list(self.counts) if video_ids is None else list(video_ids)
        missing = [v for v in ids if not self.folder(v).is_dir()]
        if missing:
            raise SevereError(f"{len(missing)} of {len(ids)} frame folders are missing under {self.frames_dir} "
                              f"(first: {missing[0]}); extract the frames as the README describes")

    def num_frames(self, video_id: str) -> int:
        return self.counts[video_id]

    def read(self, video_id: str, positions: Sequence[int]) -> torch.Tensor:
        """Frames at frame-list ``positions`` (repeats allowed) as uint8 ``[T, 3, H, W]`` (RGB, channels-last memory)."""
        with self.reader.open(self.folder(video_id)) as handle:
            if handle.info.num_frames != self.counts[video_id]:
                raise SevereError(f"{self.folder(video_id)} holds {handle.info.num_frames} frames but its frame list "
                                  f"names {self.counts[video_id]}; re-extract the frames or fix the frame list")
            frames = handle.read(list(positions))
        return torch.from_numpy(frames).permute(0, 3, 1, 2)
