"""Check a backbone module against its registered spec on one small clip."""

from __future__ import annotations

import torch
from torch import nn

from severe.errors import SevereError
from severe.models.registry import BackboneSpec, get_backbone_spec

__all__ = ["check_backbone_contract"]


def check_backbone_contract(backbone: nn.Module, frames: int, crop: int, batch: int = 1) -> tuple[torch.Size, torch.Size]:
    """Run ``backbone`` (in eval mode, without gradients) on a random ``batch x 3 x frames x crop x crop`` clip
    and require ``forward -> B x D`` and ``forward_features -> B x D x frames/ts x crop/ss x crop/ss`` with
    ``D``, ``ts``, ``ss`` from its spec. ``frames``/``crop`` must be multiples of the strides. Returns both
    shapes; any difference is a one-line SevereError."""
    spec: BackboneSpec = getattr(backbone, "spec", None) or get_backbone_spec(getattr(backbone, "arch", None))
    name = f"backbone '{spec.name}'"
    if frames % spec.temporal_stride or crop % spec.spatial_stride:
        raise SevereError(f"{name}: frames must be a multiple of {spec.temporal_stride} and crop of "
                          f"{spec.spatial_stride} (its strides), got {frames} and {crop}")
    for method in ("forward", "forward_features"):
        if not callable(getattr(backbone, method, None)):
            raise SevereError(f"{name} has no {method}(x); the backbone contract needs forward and forward_features")
    if getattr(backbone, "feature_dim", spec.feature_dim) != spec.feature_dim:
        raise SevereError(f"{name}: attribute feature_dim {backbone.feature_dim} differs from the spec's {spec.feature_dim}")
    expected_pooled = (batch, spec.feature_dim)
    expected_map = (batch, spec.feature_dim, frames // spec.temporal_stride, crop // spec.spatial_stride,
                    crop // spec.spatial_stride)
    x = torch.randn(batch, 3, frames, crop, crop, generator=torch.Generator().manual_seed(0))
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            pooled, fmap = backbone(x), backbone.forward_features(x)
    finally:
        backbone.train(was_training)
    if tuple(pooled.shape) != expected_pooled:
        raise SevereError(f"{name}: forward on {tuple(x.shape)} gave {tuple(pooled.shape)}, expected {expected_pooled}")
    if tuple(fmap.shape) != expected_map:
        raise SevereError(f"{name}: forward_features on {tuple(x.shape)} gave {tuple(fmap.shape)}, expected "
                          f"{expected_map} (feature_dim {spec.feature_dim}, temporal stride {spec.temporal_stride}, "
                          f"spatial stride {spec.spatial_stride})")
    return pooled.shape, fmap.shape
