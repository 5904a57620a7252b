"""The Charades classifier of tasks.md §2.1 and precise-BN statistics.

Model: R(2+1)D-18 trunk -> global average pool over the layer4 map's own T', H', W' (TCLR: T' = 8) ->
dropout -> Linear(512, C) (PyTorch's default init, as the original wrapper). Logits in training
(BCEWithLogits); sigmoid scores at test.

Precise BN (PySlowFast ``BN.USE_PRECISE_STATS``, fvcore ``update_bn_stats``): with every BatchNorm's
momentum set to 1, run the model in training mode on N training batches without gradients and set each
running mean/variance to the plain average of the per-batch statistics.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable

import torch
from torch import nn

from severe.checkpoints.weights import build_initialised_backbone
from severe.models import FEATURE_DIM, VideoClassifier, build_backbone, linear_head

__all__ = ["build_multilabel_model", "update_bn_stats"]


def build_multilabel_model(arch: str, weights=None, *, num_classes: int = 157, dropout: float = 0.5) -> VideoClassifier:
    """``VideoClassifier(backbone, Dropout -> Linear(512, num_classes))`` on ``weights`` (strict) or a fresh ``arch``."""
    backbone = build_initialised_backbone(weights) if weights is not None else build_backbone(arch)
    return VideoClassifier(backbone, linear_head(FEATURE_DIM, num_classes, dropout=dropout))


@torch.no_grad()
def update_bn_stats(model: nn.Module, batches: Iterable[Any], num_batches: int,
                    forward: Callable[[nn.Module, Any], Any]) -> int:
    """Replace BatchNorm running statistics by their average over up to ``num_batches`` batches.

    ``forward(model, batch)`` runs one batch (moving it to the model's device). Returns the number of
    batches used (0 leaves the statistics unchanged). The model is left in training mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    model.train()
    momenta = [bn.momentum for bn in bns]
    means = [torch.zeros_like(bn.running_mean) for bn in bns]
    variances = [torch.zeros_like(bn.running_var) for bn in bns]
    for bn in bns:
        bn.momentum = 1.0
    used = 0
    try:
        for i, batch in enumerate(itertools.islice(batches, num_batches)):
            forward(model, batch)
            for bn, mean, var in zip(bns, means, variances):
                mean += (bn.running_mean - mean) / (i + 1)
                var += (bn.running_var - var) / (i + 1)
            used = i + 1
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
    if used:
        for bn, mean, var in zip(bns, means, variances):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
    return used
