"""Charades v1 multi-label classification (docs/tasks.md §2): data, model, precise BN, runner."""

from severe.multilabel.data import CharadesDataset, clip_positions, clip_span, train_start, view_starts
from severe.multilabel.model import build_multilabel_model, update_bn_stats

__all__ = ["CharadesDataset", "build_multilabel_model", "clip_positions", "clip_span", "train_start", "view_starts",
           "update_bn_stats"]
