"""Charades v1 samples (docs/tasks.md §2.2): clip sampling, labels and the dataset.

* Clip (samplers of :mod:`severe.data.sampling`): ``num_frames`` frames at stride ``rate`` of the 24 fps
  frame list: span = (num_frames - 1) * rate + 1.
* Training start: uniform integer in [0, L - span] (in [L - span, 0] when L < span); positions clamped
  to [0, L - 1]. Label = union of the per-frame labels from the first to the last sampled (clamped) frame.
* Test views: temporal clip i of V starts at round(i * max(L - span, 0) / (V - 1)); each clip is resized
  to short side TEST_CROP_SIZE and cut into 3 square crops (left/centre/right, top/middle/bottom for
  portrait) or the centre crop only. Label = union of all frame labels of the video.
* Training view: short side from DATA.TRAIN_JITTER_SCALES (inverse-uniform by default), random crop,
  flip 0.5. Randomness of item i in epoch e from ``numpy.random.default_rng([seed, e, i])``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from severe.data.readers.frame_list import FrameListVideo
from severe.data.sampling import RandomStridedSampler, StridedClip, UniformStridedSampler, strided_positions
from severe.data.transforms import Normalization
from severe.data.frames import FrameVideos
from severe.data.spatial import resize_frames, short_side_size, train_plan, uniform_crop_offsets
from severe.errors import SevereError

__all__ = ["clip_span", "train_start", "view_starts", "clip_positions", "label_vector", "spatial_indices",
           "CharadesDataset"]


# The functional API of earlier versions (exported by severe.multilabel): the samplers' rules.
clip_positions = strided_positions  # frame positions start + rate * k, clamped to [0, length - 1]


def clip_span(num_frames: int, rate: int) -> int:
    """Frames covered by one clip: (num_frames - 1) * rate + 1 (249 for 32 x 8)."""
    return StridedClip(num_frames, rate).span


def train_start(length: int, span: int, rng: np.random.Generator) -> int:
    """Uniform integer start in [0, L - span], or in [L - span, 0] for a video shorter than the span."""
    return RandomStridedSampler(span, 1).start(length, rng)


def view_starts(length: int, span: int, views: int) -> list[int]:
    """Starts of the ``views`` uniformly spaced test clips: round(i * max(L - span, 0) / (views - 1))."""
    return UniformStridedSampler(span, 1, views).starts(length)


def label_vector(ids: Sequence[int], num_classes: int) -> torch.Tensor:
    """Multi-hot float32 [num_classes] of 0-based class ids."""
    out = torch.zeros(num_classes, dtype=torch.float32)
    if ids:
        if max(ids) >= num_classes or min(ids) < 0:
            raise SevereError(f"Charades class ids {list(ids)} outside 0..{num_classes - 1}")
        out[list(ids)] = 1.0
    return out


def spatial_indices(crops: int) -> tuple[int, ...]:
    """uniform_crop indices of the test crops: (0, 1, 2) for 3 crops, (1,) = centre for 1."""
    return (0, 1, 2) if crops == 3 else (1,)


class CharadesDataset(Dataset):
    """Training items ``(clip [C,T,S,S], target [C], i)``; test items ``(views [V*K,C,T,S,S], target [C], i)``
    with V temporal clips x K spatial crops (view order: clip-major)."""

    def __init__(self, videos: Sequence[FrameListVideo], frames: FrameVideos, *, train: bool, num_frames: int,
                 sampling_rate: int, norm: Normalization, seed: int, num_classes: int, crop_size: int = 112,
                 jitter: tuple[int, int] = (256, 340), inverse_jitter: bool = True, test_size: int = 112,
                 ensemble_views: int = 10, spatial_crops: int = 3) -> None:
        self.videos = list(videos)
        self.frames = frames
        self.train = train
        self.num_frames, self.rate = num_frames, sampling_rate
        self.train_sampler = RandomStridedSampler(num_frames, sampling_rate)
        self.test_sampler = UniformStridedSampler(num_frames, sampling_rate, ensemble_views)
        self.span = self.train_sampler.span
        self.norm, self.seed, self.num_classes = norm, seed, num_classes
        self.crop_size, self.jitter, self.inverse_jitter = crop_size, tuple(jitter), inverse_jitter
        self.test_size, self.ensemble_views, self.spatial_crops = test_size, ensemble_views, spatial_crops
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos)

    def train_positions(self, index: int) -> list[int]:
        """Frame positions of item ``index``'s training clip in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.train_sampler(len(self.videos[index].frames), rng)

    def __getitem__(self, index: int):
        return self._train_item(index) if self.train else self._test_item(index)

    def _train_item(self, index: int):
        video = self.videos[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        positions = self.train_sampler(len(video.frames), rng)
        frames = self.frames.read(video.video_id, positions)
        plan = train_plan(frames.shape[-2], frames.shape[-1], rng, jitter=self.jitter, inverse=self.inverse_jitter,
                          crop=self.crop_size)
        target = label_vector(video.labels_between(positions[0], positions[-1]), self.num_classes)
        return self.norm.apply(plan.frames(frames)), target, index

    def _test_item(self, index: int):
        video = self.videos[index]
        clips = self.test_sampler(len(video.frames))
        unique = sorted({p for c in clips for p in c})
        frames = self.frames.read(video.video_id, unique)
        h, w = short_side_size(frames.shape[-2], frames.shape[-1], self.test_size)
        frames = resize_frames(frames, h, w)
        where = {p: i for i, p in enumerate(unique)}
        size = self.test_size
        views = []
        for positions in clips:
            clip = frames[[where[p] for p in positions]]
            for k in spatial_indices(self.spatial_crops):
                top, left = uniform_crop_offsets(h, w, size, k)
                views.append(self.norm.apply(clip[..., top:top + size, left:left + size]))
        return torch.stack(views), label_vector(video.labels, self.num_classes), index
