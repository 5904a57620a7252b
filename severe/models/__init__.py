"""Backbones (R(2+1)D-18, its TCLR variant, R3D-18, I3D, or any registered one) and heads."""

from severe.models.backbones import VideoBackbone
from severe.models import vit as _vit  # noqa: F401  (registers the ViT backbones after the CNNs)
from severe.models.contract import check_backbone_contract
from severe.models.heads import AuxiliaryHead, ClipNormalizer, VideoClassifier, linear_head
from severe.models.registry import (
    ARCHITECTURES,
    BACKBONES,
    BackboneSpec,
    backbone_key_shapes,
    build_backbone,
    get_backbone_spec,
    load_backbone_state,
    register_backbone,
)

__all__ = [
    "ARCHITECTURES",
    "AuxiliaryHead",
    "BACKBONES",
    "BackboneSpec",
    "VideoBackbone",
    "VideoClassifier",
    "ClipNormalizer",
    "backbone_key_shapes",
    "build_backbone",
    "check_backbone_contract",
    "get_backbone_spec",
    "linear_head",
    "load_backbone_state",
    "register_backbone",
]
