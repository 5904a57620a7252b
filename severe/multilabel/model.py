"""The Charades classifier of docs/tasks.md §2.1.

Model: a registered backbone (R(2+1)D-18 by default) -> its pooled feature (R(2+1)D-18: global average
pool over the layer4 map's own T', H', W'; TCLR: T' = 8) -> dropout -> Linear(feature_dim, C) (PyTorch's
default init, as the original wrapper). Logits in training (BCEWithLogits); sigmoid scores at test.

Precise BN lives in :mod:`severe.engine.precise_bn` (shared with recognition).
"""

from __future__ import annotations

from severe.engine.precise_bn import update_bn_stats
from severe.models import VideoClassifier, build_backbone, linear_head

__all__ = ["build_multilabel_model", "update_bn_stats"]


def build_multilabel_model(arch: str | None, weights=None, *, num_classes: int = 157,
                           dropout: float = 0.5) -> VideoClassifier:
    """``VideoClassifier(backbone, Dropout -> Linear(feature_dim, num_classes))`` on ``weights`` (strict) or a
    fresh ``arch``."""
    backbone = build_backbone(arch, weights)
    return VideoClassifier(backbone, linear_head(backbone.feature_dim, num_classes, dropout=dropout))
