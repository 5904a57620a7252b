"""Classification heads and the backbone + head classifier."""

from __future__ import annotations

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


class VideoClassifier(nn.Module):
    """Backbone -> pooled ``backbone.feature_dim`` feature -> head. ``backbone`` and ``head`` are the two
    parts a linear probe freezes and trains respectively."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


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

