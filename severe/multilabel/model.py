"""The Charades classifier of tasks.md §2.1.

Model: R(2+1)D-18 trunk -> global average pool over the layer4 map's own T', H', W' (TCLR: T' = 8) ->
dropout -> Linear(512, C) (PyTorch's default init, as the original wrapper). Logits in training
(BCEWithLogits); sigmoid scores at test.

Precise BN lives in :mod:`severe.engine.precise_bn` (shared with recognition).
"""

from __future__ import annotations


from severe.checkpoints.weights import build_initialised_backbone
from severe.engine.precise_bn import update_bn_stats
from severe.models import FEATURE_DIM, VideoClassifier, build_backbone, linear_head

__all__ = ["build_multilabel_model", "update_bn_stats"]


def build_multilabel_model(arch: str, weights=None, *, num_classes: int = 157, dropout: float = 0.5) -> VideoClassifier:
    """``VideoClassifier(backbone, Dropout -> Linear(512, num_classes))`` on ``weights`` (strict) or a fresh ``arch``."""
    backbone = build_initialised_backbone(weights) if weights is not None else build_backbone(arch)
    return VideoClassifier(backbone, linear_head(FEATURE_DIM, num_classes, dropout=dropout))
