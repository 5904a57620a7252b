"""A registered backbone (R(2+1)D-18 by default) + the four counting heads (docs/tasks.md §3.2).

``cls_1`` (D -> 2A, viewed [2, A]) and ``box_1`` (D -> A) read stream 1 (previous cycle), ``cls_2``
and ``box_2`` stream 2 (next cycle), with D = ``backbone.feature_dim``. ``stream_features="same"`` (SEVERE,
the default) feeds the backbone's pooled vector to both; ``"split"`` (the upstream method) pools the left
and right temporal halves of its ``forward_features`` map separately (needs an even number >= 2 of map
time steps: a multiple of 2 x the temporal stride in input frames, e.g. 32 frames for R(2+1)D-18).
"""

from __future__ import annotations

import torch
from torch import nn

from severe.errors import SevereError

HEADS = ("cls_1", "box_1", "cls_2", "box_2")


class RepetitionCounter(nn.Module):
    """``forward(x [B, 3, T, H, W]) -> (cls_1 [B, 2, A], box_1 [B, A], cls_2 [B, 2, A], box_2 [B, A])``."""

    def __init__(self, backbone: nn.Module, num_anchors: int = 7, stream_features: str = "same") -> None:
        super().__init__()
        if stream_features not in ("same", "split"):
            raise SevereError(f"stream_features must be 'same' or 'split', got {stream_features!r}")
        self.backbone = backbone
        self.num_anchors = int(num_anchors)
        self.stream_features = stream_features
        dim = backbone.feature_dim
        self.cls_1 = nn.Linear(dim, 2 * num_anchors)
        self.box_1 = nn.Linear(dim, num_anchors)
        self.cls_2 = nn.Linear(dim, 2 * num_anchors)
        self.box_2 = nn.Linear(dim, num_anchors)

    def stream_vectors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stream_features == "same":
            f = self.backbone(x)
            return f, f
        fm = self.backbone.forward_features(x)  # [B, D, T', h, w]
        t = fm.shape[2]
        if t < 2 or t % 2:
            ts = self.backbone.spec.temporal_stride
            raise SevereError(f"the split-stream variant needs an even number >= 2 of layer4 time steps, got {t} "
                              f"for {x.shape[2]} input frames; use a multiple of {2 * ts} frames per stream (temporal "
                              f"stride {ts} of '{self.backbone.arch}') or MODEL.STREAM_FEATURES same")
        return fm[:, :, : t // 2].mean(dim=(2, 3, 4)), fm[:, :, t // 2:].mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        f1, f2 = self.stream_vectors(x)
        A = self.num_anchors
        return self.cls_1(f1).view(-1, 2, A), self.box_1(f1), self.cls_2(f2).view(-1, 2, A), self.box_2(f2)
