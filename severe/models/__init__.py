"""Backbones (R(2+1)D-18, its TCLR variant, R3D-18) and heads."""

from severe.models.backbones import (
    ARCHITECTURES,
    FEATURE_DIM,
    VideoBackbone,
    backbone_key_shapes,
    build_backbone,
    load_backbone_state,
    register_backbone,
)
from severe.models.heads import AuxiliaryHead, VideoClassifier, linear_head

__all__ = [
    "ARCHITECTURES",
    "AuxiliaryHead",
    "FEATURE_DIM",
    "VideoBackbone",
    "VideoClassifier",
    "backbone_key_shapes",
    "build_backbone",
    "linear_head",
    "load_backbone_state",
    "register_backbone",
]
