"""Spatial ops of the PySlowFast-style pipelines (AVA and Charades) on uint8 frames and pixel boxes.

Frames are uint8 ``[T, 3, H, W]``; boxes are float64 ``[N, 4]`` (x1, y1, x2, y2) in **continuous pixel
coordinates** of the current frame: a box covering the whole W x H frame is (0, 0, W, H). This is the
convention of ``torchvision.ops.roi_align(aligned=True)``, so a transformed box always encloses the same
pixels as before (PySlowFast's cv2 helpers flipped to ``W - 1 - x`` and clipped to ``W - 1``, a one-pixel
shift; see the subproject README).

One clip = one :class:`SpatialPlan` (resize, optional crop, optional flip) applied identically to every
frame and to the boxes. Resizing is bilinear **without antialiasing**, like PySlowFast's ``cv2.resize``
/ ``F.interpolate``; the short side becomes ``size`` and the long side ``floor(long / short * size)``.
Used by AVA (:mod:`severe.detection`) and Charades (:mod:`severe.multilabel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from severe.data.transforms import ShortSideJitter, short_side_size

__all__ = [
    "short_side_size",
    "resize_frames",
    "boxes_to_pixels",
    "clip_boxes",
    "scale_boxes",
    "crop_boxes",
    "flip_boxes",
    "uniform_crop_offsets",
    "SpatialPlan",
    "train_plan",
    "resize_plan",
]


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize (no antialias) of uint8 ``[T, 3, H, W]`` frames; a no-op at the same size."""
    if tuple(frames.shape[-2:]) == (height, width):
        return frames
    return F.resize(frames, [height, width], interpolation=InterpolationMode.BILINEAR, antialias=False)


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip x to [0, width] and y to [0, height]."""
    out = boxes.astype(np.float64, copy=True)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, height)
    return out


def boxes_to_pixels(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised (0-1) boxes -> pixel boxes of a ``height`` x ``width`` frame (clipped)."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return clip_boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale, height, width)


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Boxes of a frame resized by (sx, sy)."""
    return boxes * np.array([sx, sy, sx, sy], dtype=np.float64)


def crop_boxes(boxes: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Boxes of the ``height`` x ``width`` crop at (top, left): shifted, then clipped to the crop."""
    shifted = boxes - np.array([left, top, left, top], dtype=np.float64)
    return clip_boxes(shifted, height, width)


def flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Boxes of a horizontally flipped frame of ``width`` pixels: x -> width - x (x1 and x2 swap)."""
    out = boxes.astype(np.float64, copy=True)
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def uniform_crop_offsets(height: int, width: int, size: int, index: int) -> tuple[int, int]:
    """(top, left) of PySlowFast's ``uniform_crop``: index 1 = centre (ceil), 0/2 = the start/end of the
    long side (top/bottom for portrait frames, left/right otherwise)."""
    top = int(math.ceil((height - size) / 2))
    left = int(math.ceil((width - size) / 2))
    if height > width:
        top = {0: 0, 2: height - size}.get(index, top)
    else:
        left = {0: 0, 2: width - size}.get(index, left)
    return top, left


@dataclass(frozen=True)
class SpatialPlan:
    """Resize to (height, width), then an optional square crop (top, left, size), then an optional flip."""

    height: int
    width: int
    crop: tuple[int, int, int] | None = None
    flip: bool = False

    @property
    def out_size(self) -> tuple[int, int]:
        return (self.crop[2], self.crop[2]) if self.crop else (self.height, self.width)

    def frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]`` -> uint8 ``[T, 3, h, w]``."""
        x = resize_frames(frames, self.height, self.width)
        if self.crop is not None:
            top, left, size = self.crop
            x = x[..., top:top + size, left:left + size]
        if self.flip:
            x = x.flip(-1)
        return x

    def boxes(self, boxes: np.ndarray, src_height: int, src_width: int) -> np.ndarray:
        """Pixel boxes of the source frame -> pixel boxes of the planned output."""
        b = scale_boxes(boxes, self.width / src_width, self.height / src_height)
        b = clip_boxes(b, self.height, self.width)
        if self.crop is not None:
            top, left, size = self.crop
            b = crop_boxes(b, top, left, size, size)
        if self.flip:
            b = flip_boxes(b, self.out_size[1])
        return b


def train_plan(height: int, width: int, rng: np.random.Generator, *, jitter: tuple[int, int], inverse: bool,
               crop: int, flip_p: float = 0.5) -> SpatialPlan:
    """Training view: :class:`~severe.data.transforms.ShortSideJitter` (short side from ``jitter``,
    inverse-uniform or uniform, PySlowFast's floor resize, random ``crop`` x ``crop``), then a horizontal
    flip with probability ``flip_p``. Draw order: size, top, left, flip."""
    j = ShortSideJitter(jitter[0], jitter[1], crop, draw="inverse" if inverse else "uniform",
                        resize="floor").sample(height, width, rng)
    flip = bool(rng.random() < flip_p)
    return SpatialPlan(j.height, j.width, (j.top, j.left, j.size), flip)


def resize_plan(height: int, width: int, size: int) -> SpatialPlan:
    """Short side -> ``size``, whole frame (AVA test view)."""
    h, w = short_side_size(height, width, size)
    return SpatialPlan(h, w)
