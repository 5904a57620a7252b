"""Metrics of every task (docs/protocol.md §12). One import line per task module."""

from severe.metrics.ava import frame_map
from severe.metrics.charades import charades_map
from severe.metrics.repetition import repetition_errors, repetition_summary
from severe.metrics.recognition import knn_classify, knn_votes, label_ranks, video_accuracy

__all__ = ["charades_map", "frame_map", "knn_classify", "knn_votes", "label_ranks", "repetition_errors", "repetition_summary", "video_accuracy"]
