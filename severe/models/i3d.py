"""Inception-v1 I3D, the backbone of Tubelet-Contrast's I3D checkpoint (docs/checkpoints.md §3.8).

Our implementation of the network the original ``i3d.py`` builds (the pytorch port of the Kinetics
I3D): a 7x7x7 stride-2 stem, max-pools, and nine ``Mixed`` Inception blocks. Module names match the
original's, so a checkpoint's ``backbone.*`` tensors load by stripping the prefix alone
(``conv3d_1a_7x7.conv3d.weight``, ``mixed_3b.branch_1.0.batch3d.running_mean``, ...).

Padding is the original's static "SAME" rule: along every axis a total of ``max(kernel - stride, 0)``
zeros, the smaller half before and the larger half after, whatever the input size. Convolutions
then run unpadded (floor), max-pools with ``ceil_mode=True``. Every kernel and stride here has equal
height and width, so the axis order of the padding does not matter.

The feature is the global average of ``mixed_5c`` (1024-d). ``forward_features`` returns the map:
T' = ceil(floor(T/2)/4), H' = ceil(floor(H/2)/16) (= T/8 and H/32 for multiples of 8 and 32);
32 x 224 x 224 -> 1024 x 4 x 7 x 7, 16 x 112 x 112 -> 1024 x 2 x 4 x 4 (any clip of at least 2 x 2 x 2).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Triple = tuple[int, int, int]


def _triple(v: int | Sequence[int]) -> Triple:
    t = (v, v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 3:
        raise ValueError(f"expected an int or 3 values, got {v!r}")
    return t  # type: ignore[return-value]


def same_padding(kernel: int | Sequence[int], stride: int | Sequence[int]) -> tuple[int, int, int, int, int, int]:
    """Static "SAME" zero padding in ``F.pad`` order (W before/after, H before/after, T before/after).

    Per axis the total is ``max(k - s, 0)``, split as (total // 2, total - total // 2).
    """
    pads: list[int] = []
    for k, s in reversed(list(zip(_triple(kernel), _triple(stride)))):  # F.pad starts at the last axis
        total = max(k - s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)  # type: ignore[return-value]


class Unit3D(nn.Module):
    """Conv3d (no bias) with static SAME padding -> BatchNorm3d -> ReLU (the original ``Unit3Dpy``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | Sequence[int] = 1,
                 stride: int | Sequence[int] = 1) -> None:
        super().__init__()
        pad = same_padding(kernel, stride)
        symmetric = len(set(pad)) == 1  # one value everywhere: let the convolution pad
        self.pad = None if symmetric else pad
        self.conv3d = nn.Conv3d(in_channels, out_channels, _triple(kernel), _triple(stride),
                                padding=pad[0] if symmetric else 0, bias=False)
        self.batch3d = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return F.relu(self.batch3d(self.conv3d(x)))


class MaxPool3dSame(nn.Module):
    """Zero padding by the static SAME rule, then max-pool with ``ceil_mode=True``."""

    def __init__(self, kernel: int | Sequence[int], stride: int | Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.pad = same_padding(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(F.pad(x, self.pad), self.kernel, self.stride, ceil_mode=True)


class Mixed(nn.Module):
    """Inception block: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | 3x3x3 max-pool -> 1x1, concatenated."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        c0, c1_reduce, c1, c2_reduce, c2, c3 = channels
        self.branch_0 = Unit3D(in_channels, c0)
        self.branch_1 = nn.Sequential(Unit3D(in_channels, c1_reduce), Unit3D(c1_reduce, c1, 3))
        self.branch_2 = nn.Sequential(Unit3D(in_channels, c2_reduce), Unit3D(c2_reduce, c2, 3))
        self.branch_3 = nn.Sequential(MaxPool3dSame(3, 1), Unit3D(in_channels, c3))
        self.out_channels = c0 + c1 + c2 + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], dim=1)


# Mixed block -> (1x1, 3x3 reduce, 3x3, second 3x3 reduce, second 3x3, pool projection): Inception-v1.
MIXED_CHANNELS: dict[str, tuple[int, ...]] = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}

# The layer sequence: (module name, kind, arguments). "unit": (out, kernel, stride); "pool": (kernel, stride).
LAYERS: tuple[tuple[str, str, tuple], ...] = (
    ("conv3d_1a_7x7", "unit", (64, 7, 2)),
    ("maxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("conv3d_2b_1x1", "unit", (64, 1, 1)),
    ("conv3d_2c_3x3", "unit", (192, 3, 1)),
    ("maxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("mixed_3b", "mixed", ()),
    ("mixed_3c", "mixed", ()),
    ("maxPool3d_4a_3x3", "pool", (3, 2)),
    ("mixed_4b", "mixed", ()),
    ("mixed_4c", "mixed", ()),
    ("mixed_4d", "mixed", ()),
    ("mixed_4e", "mixed", ()),
    ("mixed_4f", "mixed", ()),
    ("maxPool3d_5a_2x2", "pool", (2, 2)),
    ("mixed_5b", "mixed", ()),
    ("mixed_5c", "mixed", ()),
)


class I3D(nn.Module):
    """Inception-v1 I3D without classifier: ``forward`` -> B x 1024, ``forward_features`` -> mixed_5c map."""

    arch = "i3d"
    feature_dim = 1024

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        channels = in_channels
        for name, kind, args in LAYERS:
            if kind == "unit":
                out, kernel, stride = args
                module: nn.Module = Unit3D(channels, out, kernel, stride)
                channels = out
            elif kind == "pool":
                module = MaxPool3dSame(*args)
            else:
                module = Mixed(channels, MIXED_CHANNELS[name])
                channels = module.out_channels
            self.add_module(name, module)
        assert channels == self.feature_dim
        self.layer_names = tuple(name for name, _, _ in LAYERS)
        self.avgpool = nn.AdaptiveAvgPool3d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W clip -> B x 1024 x T' x H' x W' mixed_5c map (strides 8 and 32)."""
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W clip -> B x 1024 global average of mixed_5c."""
        return self.avgpool(self.forward_features(x)).flatten(1)


def build_i3d() -> I3D:
    """A randomly initialised I3D (PyTorch default init, seeded by the caller's RNG)."""
    return I3D()


# Registry entry: register_backbone("i3d", build_i3d, **I3D_SPEC). The original's I3D recipe feeds
# 32-frame clips (2 s at 16 fps) at 224 x 224, RGB with ImageNet statistics, like the other
# Tubelet-Contrast rows.
I3D_SPEC = dict(
    family="i3d",
    feature_dim=1024,
    temporal_stride=8,
    spatial_stride=32,
    default_frames=32,
    default_crop=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)
