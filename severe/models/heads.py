"""Classification heads and the backbone + head classifier."""

from __future__ import annotations

import torch
from torch import nn

from severe.models.backbones import VideoBackbone


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


class VideoClassifier(nn.Module):
    """Backbone -> pooled 512-d feature -> head. ``backbone`` and ``head`` are the two parts a linear
    probe freezes and trains respectively."""

    def __init__(self, backbone: VideoBackbone, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
