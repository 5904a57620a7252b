"""Multi-view test of the ViT recipe (docs/protocol.md §15): each of the K uniformly spaced clips of a video is
seen through 3 spatial crops, and the test scores average the softmax over all K x 3 views.

:class:`ThreeCropTestTransform` resizes the short side to ``resize`` and takes ``crop`` x ``crop`` crops at the
start, centre and end of the long side (centred on the short side), as VideoMAE's ``uniform_crop``;
:class:`MultiViewClipDataset` yields ``[K * V, C, T, S, S]`` per video (clip-major), so the dense test
(:func:`severe.engine.predict_dense`) averages every view without knowing about crops.
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from severe.data.dataset import FAILED_LABEL, ClipDataset
from severe.data.transforms import Normalization

__all__ = ["crop_offsets", "ThreeCropTestTransform", "MultiViewClipDataset"]


def crop_offsets(length: int, size: int, views: int) -> list[int]:
    """Offsets of ``views`` crops of ``size`` along an axis of ``length``: 1 view = the centre (ceil), 3 = start,
    centre, end."""
    centre = int(math.ceil((length - size) / 2))
    return [centre] if views == 1 else [0, centre, length - size]


class ThreeCropTestTransform:
    """Test views: short side -> ``resize``, then ``views`` (3) crops of ``crop`` along the long side, normalised."""

    __test__ = False  # not a pytest test class

    def __init__(self, resize: int = 224, crop: int = 224, norm: Normalization = Normalization(), views: int = 3) -> None:
        self.resize, self.crop, self.size, self.norm, self.views = int(resize), int(crop), int(crop), norm, int(views)

    def spatial(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, h, w]`` with short side ``resize`` (deterministic)."""
        return F.resize(frames, [self.resize], interpolation=InterpolationMode.BILINEAR, antialias=True)

    def finish(self, clip: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, C, h, w]`` -> normalised float ``[V, C, T, crop, crop]``."""
        h, w = clip.shape[-2:]
        s = self.crop
        if h > w:
            boxes = [(y, crop_offsets(w, s, 1)[0]) for y in crop_offsets(h, s, self.views)]
        else:
            boxes = [(crop_offsets(h, s, 1)[0], x) for x in crop_offsets(w, s, self.views)]
        return torch.stack([self.norm.apply(clip[..., y:y + s, x:x + s]) for y, x in boxes])

    def __call__(self, video: torch.Tensor, generator=None) -> torch.Tensor:
        return self.finish(self.spatial(video))


class MultiViewClipDataset(ClipDataset):
    """A test :class:`ClipDataset` whose transform returns several views per clip: items are
    ``(float [K * V, C, T, S, S], label, index)``; an undecodable video's marker item has the same shape."""

    def _test_item(self, i: int):
        clips, label, index = super()._test_item(i)
        if clips.dim() == 6:
            return clips.flatten(0, 1), label, index
        if label != FAILED_LABEL:  # pragma: no cover - the transform's contract
            raise ValueError(f"multi-view test item {i}: expected [K, V, C, T, S, S] clips, got {tuple(clips.shape)}")
        return clips.repeat_interleave(int(getattr(self.transform, "views", 1)), dim=0), label, index
