"""AVA v2.2 spatio-temporal action detection (docs/tasks.md §1): data, RoI-head model, runner."""

from severe.detection.data import AvaDataset, Keyframe, keyframe_positions, load_ava_split, merge_keyframes, multi_hot
from severe.detection.model import DetectionModel, RoIHead, build_detection_model

__all__ = ["AvaDataset", "DetectionModel", "Keyframe", "RoIHead", "build_detection_model", "keyframe_positions",
           "load_ava_split", "merge_keyframes", "multi_hot"]
