"""Classification heads and the backbone + head classifier."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def linear_head(in_dim: int, num_classes: int, init: str = "default", dropout: float = 0.0) -> nn.Module:
    """``Linear(in_dim, num_classes)`` (optionally after dropout).

    init: "default" = PyTorch's Linear init (SEVERE finetuning), "normal" = N(0, 0.01) weights and zero
    bias (SEVERE linear probe).
    """
    fc = nn.Linear(in_dim, num_classes)
    if init == "normal":
        nn.init.normal_(fc.weight, 0.0, 0.01)
        nn.init.zeros_(fc.bias)
    elif init != "default":
        raise ValueError(f"unknown head init '{init}' (use 'default' or 'normal')")
    return nn.Sequential(nn.Dropout(dropout), fc) if dropout > 0 else fc


class ClipNormalizer(nn.Module):
    """The input normalisation on the model's device: uint8 clips ``[B, 3, T, H, W]`` (0..255, RGB, from a loader
    that leaves it out) -> float32 ``(x / 255 - mean) / std``, then the backbone's channel order; float clips
    (already normalised by the loader) pass unchanged.

    ``scale``/``shift`` per RGB channel: normalised = ``x * scale - shift`` for ``x`` on the 0..255 scale, the
    loader's ``Normalization.affine()`` (so the values equal the loader's float path up to float rounding). The
    constants are non-persistent buffers: they follow ``.to(device)`` and stay out of the state dict, so
    checkpoints are unchanged.
    """

    def __init__(self, scale: Sequence[float], shift: Sequence[float], channel_order: str = "RGB") -> None:
        super().__init__()
        if len(scale) != 3 or len(shift) != 3 or channel_order not in ("RGB", "BGR"):
            raise ValueError(f"need 3 scales, 3 shifts and RGB or BGR; got {scale}, {shift}, {channel_order!r}")
        self.register_buffer("scale", torch.tensor([float(v) for v in scale]).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor([float(v) for v in shift]).view(1, 3, 1, 1, 1), persistent=False)
        self.bgr = channel_order == "BGR"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 clips [B, 3, T, H, W], got {tuple(x.shape)}")
        y = x.to(torch.float32).mul_(self.scale).sub_(self.shift)
        return y.flip(1) if self.bgr else y


class VideoClassifier(nn.Module):
    """Backbone -> pooled ``backbone.feature_dim`` feature -> head. ``backbone`` and ``head`` are the two
    parts a linear probe freezes and trains respectively. With a ``normalizer`` (:class:`ClipNormalizer`) the
    model also takes uint8 clips straight from the loader and normalises them on its device."""

    def __init__(self, backbone: nn.Module, head: nn.Module, normalizer: ClipNormalizer | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.normalizer = normalizer

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's input: uint8 clips normalised by the ``normalizer``, float clips as they are."""
        if x.dtype == torch.uint8:
            if self.normalizer is None:
                raise ValueError("uint8 clips need the model's ClipNormalizer (VideoClassifier(..., normalizer=...)); "
                                 "or let the loader normalise")
            return self.normalizer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.prepare(x)))


class AuxiliaryHead(nn.Module):
    """A main and an auxiliary classifier on one pooled feature (EK-100: verbs and nouns), after one dropout.

    In training mode the output is ``[main | auxiliary]`` logits (B x (M + A)) for a two-part loss; in eval
    mode only the main logits (B x M), so the test protocol and its metrics see the task's classes."""

    def __init__(self, in_dim: int, num_main: int, num_aux: int, init: str = "default", dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.main = linear_head(in_dim, num_main, init=init)
        self.aux = linear_head(in_dim, num_aux, init=init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        main = self.main(x)
        return torch.cat([main, self.aux(x)], dim=1) if self.training else main

