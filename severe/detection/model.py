"""The AVA detector of docs/tasks.md §1.1: a registered backbone (R(2+1)D-18 by default) + RoI head.

RoI head: temporal average over **all** T' of the ``forward_features`` map (T' read from the map: 4 for
32 frames, 8 for TCLR) -> ``torchvision.ops.roi_align`` (7 x 7, spatial scale 1 / the backbone's spatial
stride = 1/16 for R(2+1)D-18, sampling ratio 0, aligned=True; an exact replacement for the detectron2 op
PySlowFast used) -> MaxPool 7 -> dropout -> Linear(feature_dim, C) -> sigmoid (also in training; the loss
is BCE on probabilities). The linear layer keeps PyTorch's default initialisation, as the original wrapper did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from severe.errors import SevereError
from severe.models import build_backbone

__all__ = ["RoIHead", "DetectionModel", "build_detection_model"]


class RoIHead(nn.Module):
    """Per-box action probabilities from a feature map ``[B, C, T', H', W']`` and rois ``[N, 5]``
    (index of the clip in the batch, x1, y1, x2, y2 in input pixels)."""

    def __init__(self, dim_in: int, num_classes: int = 80, resolution: int = 7,
                 spatial_scale: float = 1.0 / 16, dropout: float = 0.5) -> None:
        super().__init__()
        self.resolution = int(resolution)
        self.spatial_scale = float(spatial_scale)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(dim_in, num_classes)

    def pool(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """[N, C] pooled box features: mean over the map's own T', RoIAlign, max over the R x R grid."""
        x = features.mean(dim=2)  # [B, C, H', W']; T' comes from the map itself
        x = roi_align(x, rois.to(x.dtype), output_size=(self.resolution, self.resolution),
                      spatial_scale=self.spatial_scale, sampling_ratio=0, aligned=True)
        return F.max_pool2d(x, self.resolution).flatten(1)

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.projection(self.dropout(self.pool(features, rois))))


class DetectionModel(nn.Module):
    """``backbone`` (its ``forward_features`` map) + ``head`` (:class:`RoIHead`);
    ``forward(clips, rois) -> [N, C]`` probabilities."""

    def __init__(self, backbone: nn.Module, head: RoIHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, clips: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(clips), rois)


def build_detection_model(arch: str | None, weights=None, *, num_classes: int = 80, resolution: int = 7,
                          spatial_scale_factor: float | None = None, dropout: float = 0.5) -> DetectionModel:
    """The detector on initial ``weights`` (a ``Converted``; strict load) or a fresh ``arch`` backbone.

    RoIAlign's scale is 1 / the backbone's spatial stride; ``spatial_scale_factor``
    (DETECTION.SPATIAL_SCALE_FACTOR), when given, must equal that stride: another scale reads the wrong cells."""
    backbone = build_backbone(arch, weights)
    stride = backbone.spec.spatial_stride
    if spatial_scale_factor is not None and spatial_scale_factor != stride:
        raise SevereError(f"DETECTION.SPATIAL_SCALE_FACTOR {spatial_scale_factor:g} does not match the spatial stride "
                          f"{stride} of backbone '{backbone.arch}'; set it to {stride}")
    head = RoIHead(backbone.feature_dim, num_classes, resolution, 1.0 / stride, dropout)
    return DetectionModel(backbone, head)
