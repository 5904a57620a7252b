"""Video backbones: torchvision R(2+1)D-18, the TCLR layer4 variant, R3D-18 and the Inception-v1 I3D
(:mod:`severe.models.i3d`), registered in :data:`severe.models.registry.BACKBONES`.

A backbone is the network without its classifier: ``stem`` and ``layer1..layer4`` keep torchvision's
module names, so its ``state_dict`` has exactly torchvision's keys without ``fc.*`` (the converted
checkpoint format). ``forward`` returns the pooled feature; ``forward_features`` the layer4 map.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.video import r2plus1d_18, r3d_18
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

from severe.models.i3d import I3D_SPEC, build_i3d
from severe.models.registry import (  # noqa: F401  (re-exported: the former home of these names)
    ARCHITECTURES,
    BACKBONES,
    backbone_key_shapes,
    build_backbone,
    get_backbone_spec,
    load_backbone_state,
    register_backbone,
)


class VideoBackbone(nn.Module):
    """Stem + four residual stages + global average pool of a torchvision VideoResNet."""

    def __init__(self, arch: str, stem: nn.Module, layers: list[nn.Module]) -> None:
        super().__init__()
        self.arch = arch
        self.spec = get_backbone_spec(arch)
        self.feature_dim = self.spec.feature_dim
        self.stem = stem
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool3d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W clip -> B x D x T/ts x H/ss x W/ss layer4 map (strides of ``self.spec``)."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W clip -> B x D pooled feature."""
        return self.avgpool(self.forward_features(x)).flatten(1)


def _from_torchvision(arch: str, model: nn.Module) -> VideoBackbone:
    return VideoBackbone(arch, model.stem, [model.layer1, model.layer2, model.layer3, model.layer4])


def _r2plus1d_18() -> VideoBackbone:
    return _from_torchvision("r2plus1d_18", r2plus1d_18(weights=None))


def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    """Two (2+1)D BasicBlocks; the first one downsamples (1x1x1 conv + BN) as torchvision's ``_make_layer``."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv3d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                   nn.BatchNorm3d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, Conv2Plus1D, stride, downsample),
                         BasicBlock(planes, planes, Conv2Plus1D))


def narrow_r2plus1d_18(width: int, arch: str) -> VideoBackbone:
    """R(2+1)D-18 with stage widths ``width, 2*width, 4*width, 8*width`` instead of 64-128-256-512: the same
    blocks, depth, strides, (2+1)D mid-channel rule and initialisation as torchvision's, at a fraction of the
    cost. The stem's spatial conv has ``45 * width // 64`` channels, as torchvision's has 45 for 64."""
    mid = max(1, 45 * width // 64)
    stem = nn.Sequential(
        nn.Conv3d(3, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width), nn.ReLU(inplace=True))
    widths = [width * 2**i for i in range(4)]
    layers = [_stage(widths[max(i - 1, 0)], w, 1 if i == 0 else 2) for i, w in enumerate(widths)]
    for mod in [*stem.modules(), *(m for layer in layers for m in layer.modules())]:  # torchvision's init
        if isinstance(mod, nn.Conv3d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm3d):
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)
    return VideoBackbone(arch, stem, layers)


def _r2plus1d_18_w8() -> VideoBackbone:
    return narrow_r2plus1d_18(8, "r2plus1d_18_w8")


def _r2plus1d_18_tclr() -> VideoBackbone:
    """TCLR's R(2+1)D-18: layer4.0.conv1's (2+1)D conv is one dilated 3x3x3 conv without temporal
    stride, and the residual downsample keeps time (docs/checkpoints.md §1.4). 32 frames -> layer4 T'=8."""
    model = r2plus1d_18(weights=None)
    block = model.layer4[0]
    conv = nn.Conv3d(256, 512, kernel_size=3, stride=(1, 2, 2), padding=(2, 1, 1), dilation=(2, 1, 1), bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    block.conv1[0] = conv
    block.downsample[0].stride = (1, 2, 2)
    return _from_torchvision("r2plus1d_18_tclr", model)


def _r3d_18() -> VideoBackbone:
    return _from_torchvision("r3d_18", r3d_18(weights=None))


# Weights are torchvision's default init, seeded by the caller's RNG. Strides measured on a 32 x 64 x 64 clip:
# layer4 maps of 4 x 4 x 4 (plain) and 8 x 4 x 4 (TCLR keeps time in layer4).
register_backbone("r2plus1d_18", _r2plus1d_18, family="r2plus1d", feature_dim=512, temporal_stride=8, spatial_stride=16)
register_backbone("r2plus1d_18_tclr", _r2plus1d_18_tclr, family="r2plus1d", feature_dim=512, temporal_stride=4,
                  spatial_stride=16)
register_backbone("r3d_18", _r3d_18, family="r3d", feature_dim=512, temporal_stride=8, spatial_stride=16)
# I3D: mixed_5c is 1024-d at strides 8 (time) / 32 (space); 32 x 224 x 224 clips -> 4 x 7 x 7 (severe.models.i3d).
register_backbone("i3d", build_i3d, **I3D_SPEC)
# R(2+1)D-18 at 1/8 width (8-16-32-64 channels, 0.5 M parameters): the demo's backbone, trained in seconds on a CPU
register_backbone("r2plus1d_18_w8", _r2plus1d_18_w8, family="r2plus1d", feature_dim=64, temporal_stride=8,
                  spatial_stride=16)
