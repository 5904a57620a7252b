"""Metrics of every task (protocol.md §12). One import line per task module."""

from severe.metrics.recognition import knn_classify, knn_votes, label_ranks, video_accuracy

__all__ = ["knn_classify", "knn_votes", "label_ranks", "video_accuracy"]
