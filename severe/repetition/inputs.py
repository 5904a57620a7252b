"""The network input of a state (lp, mp, rp) (docs/tasks.md §3.3).

Left half: ``F`` frames (16) spread over [lp - (mp - lp + 1), mp] (the previous cycle plus one cycle of
context); right half: ``F`` frames over [mp + 1, rp + (rp - mp)] (the next cycle plus one). Position j of
a half spanning [first, last] is ``round(first - 0.5 + j * (last - first + 1) / (F - 1))`` clipped to
[first, last], with the original's number conventions (``int()`` truncation of the ends, Python's
round-half-even). Positions outside the segment [0, L) show the ImageNet mean colour passed through the
clip's own input transform (0 after ImageNet normalisation; TCLR: the mean in [0, 1], BGR).

Frames are letterboxed once when loaded: the longer side is resized to ``size`` (bilinear, antialias)
and the frame zero-padded (black) to ``size x size`` around its centre, as the original's
Scale_longerside + CenterCrop did (UCF 320 x 240 -> 112 x 84 content).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from severe.data.transforms import IMAGENET_MEAN, Normalization

L_CONTEXT, R_CONTEXT = 1.0, 2.0  # the original's l_context_ratio / r_context_ratio


def _spread(first: int, last: int, n: int) -> list[int]:
    steps = (last - first + 1) * 1.0 / (n - 1)
    return [int(max(first, min(last, round(first - 0.5 + j * steps)))) for j in range(n)]


def state_positions(lp: float, mp: float, rp: float, frames_per_stream: int = 16) -> list[int]:
    """Segment positions (may lie outside the segment) of the 2F input frames of state (lp, mp, rp)."""
    lp, mp, rp = float(lp), float(mp), float(rp)
    first = int(lp - (mp - lp + 1) * L_CONTEXT)
    left = _spread(first, int(mp), frames_per_stream)
    first = int(mp + 1)
    last = int(rp + (rp - first + 1) * (R_CONTEXT - 1))
    return left + _spread(first, last, frames_per_stream)


def letterbox(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> uint8 [N, 3, size, size]: longer side to ``size``, centred, zero padding."""
    h, w = int(frames.shape[-2]), int(frames.shape[-1])
    scale = size / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    x = F.resize(frames, [nh, nw], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return F.center_crop(x, [size, size])


def pad_value(norm: Normalization) -> torch.Tensor:
    """[3, 1, 1] value of an out-of-segment frame: the ImageNet mean colour after ``norm``."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)
    if norm.mean is not None:
        mean = (mean - np.asarray(norm.mean)) / np.asarray(norm.std)
    if norm.channel_order == "BGR":
        mean = mean[::-1].copy()
    return torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)


class InputBuilder:
    """Builds float [3, 2F, S, S] network inputs from a letterboxed uint8 segment [L, 3, S, S]."""

    def __init__(self, norm: Normalization, frames_per_stream: int = 16) -> None:
        self.norm = norm
        self.frames_per_stream = int(frames_per_stream)
        self.pad = pad_value(norm)

    def positions(self, state: Sequence[float]) -> list[int]:
        lp, mp, rp = state
        return state_positions(lp, mp, rp, self.frames_per_stream)

    def build(self, segment: torch.Tensor, state: Sequence[float]) -> torch.Tensor:
        pos = np.asarray(self.positions(state), dtype=np.int64)
        inside = (pos >= 0) & (pos < segment.shape[0])
        x = self.norm.apply(segment[torch.from_numpy(np.where(inside, pos, 0))])  # [3, 2F, S, S]
        outside = torch.from_numpy(~inside)
        if bool(outside.any()):
            x[:, outside] = self.pad.expand(3, x.shape[-2], x.shape[-1]).unsqueeze(1)
        return x

    def batch(self, segments: Sequence[torch.Tensor], states: Sequence[Sequence[float]]) -> torch.Tensor:
        """[B, 3, 2F, S, S] for one state per segment."""
        return torch.stack([self.build(s, st) for s, st in zip(segments, states)])
