"""Video backbones: torchvision R(2+1)D-18, the TCLR layer4 variant, and R3D-18.

A backbone is the network without its classifier: ``stem`` and ``layer1..layer4`` keep torchvision's
module names, so its ``state_dict`` has exactly torchvision's keys without ``fc.*`` (the converted
checkpoint format). ``forward`` returns the pooled 512-d feature; ``forward_features`` the layer4 map.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torchvision.models.video import r2plus1d_18, r3d_18

from severe.errors import SevereError

FEATURE_DIM = 512


class VideoBackbone(nn.Module):
    """Stem + four residual stages + global average pool of a torchvision VideoResNet."""

    def __init__(self, arch: str, stem: nn.Module, layers: list[nn.Module]) -> None:
        super().__init__()
        self.arch = arch
        self.feature_dim = FEATURE_DIM
        self.stem = stem
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool3d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W clip -> B x 512 x T' x H/16 x W/16 layer4 feature map."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W clip -> B x 512 pooled feature."""
        return self.avgpool(self.forward_features(x)).flatten(1)


def _from_torchvision(arch: str, model: nn.Module) -> VideoBackbone:
    return VideoBackbone(arch, model.stem, [model.layer1, model.layer2, model.layer3, model.layer4])


def _r2plus1d_18() -> VideoBackbone:
    return _from_torchvision("r2plus1d_18", r2plus1d_18(weights=None))


def _r2plus1d_18_tclr() -> VideoBackbone:
    """TCLR's R(2+1)D-18: layer4.0.conv1's (2+1)D conv is one dilated 3x3x3 conv without temporal
    stride, and the residual downsample keeps time (checkpoints.md §1.4). 32 frames -> layer4 T'=8."""
    model = r2plus1d_18(weights=None)
    block = model.layer4[0]
    conv = nn.Conv3d(256, 512, kernel_size=3, stride=(1, 2, 2), padding=(2, 1, 1), dilation=(2, 1, 1), bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    block.conv1[0] = conv
    block.downsample[0].stride = (1, 2, 2)
    return _from_torchvision("r2plus1d_18_tclr", model)


def _r3d_18() -> VideoBackbone:
    return _from_torchvision("r3d_18", r3d_18(weights=None))


# arch name -> builder. Weights are torchvision's default init, seeded by the caller's RNG.
ARCHITECTURES: dict[str, Callable[[], VideoBackbone]] = {
    "r2plus1d_18": _r2plus1d_18,
    "r2plus1d_18_tclr": _r2plus1d_18_tclr,
    "r3d_18": _r3d_18,
}


def register_backbone(name: str, builder: Callable[[], nn.Module]) -> None:
    """Add an architecture for scratch runs (``MODEL.ARCH name``). ``builder()`` returns a module with
    ``arch`` (= ``name``), ``feature_dim`` and ``forward``: B x 3 x T x H x W -> B x feature_dim."""
    if name in ARCHITECTURES:
        raise SevereError(f"architecture '{name}' is already registered; choose another name")
    ARCHITECTURES[name] = builder


def build_backbone(arch: str) -> VideoBackbone:
    """Build a randomly initialised backbone (torchvision default init) of the named architecture."""
    try:
        return ARCHITECTURES[arch]()
    except KeyError:
        raise SevereError(f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}") from None


_KEY_CACHE: dict[str, dict[str, tuple[int, ...]]] = {}


def backbone_key_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Ordered {key: shape} of the backbone state_dict (torchvision keys without ``fc.*``)."""
    if arch not in _KEY_CACHE:
        with torch.device("meta"):
            sd = build_backbone(arch).state_dict()
        _KEY_CACHE[arch] = {k: tuple(v.shape) for k, v in sd.items()}
    return dict(_KEY_CACHE[arch])


def load_backbone_state(backbone: VideoBackbone, state_dict: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Load weights strictly; any missing/unexpected key or shape difference is a SevereError."""
    expected = backbone_key_shapes(backbone.arch)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [(k, expected[k], tuple(v.shape)) for k, v in state_dict.items() if k in expected and tuple(v.shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k, e, f = wrong[0]
            parts.append(f"{len(wrong)} with wrong shape (e.g. {k}: expected {e}, found {f})")
        raise SevereError(f"{source} do not fit architecture {backbone.arch}: " + "; ".join(parts))
    backbone.load_state_dict(state_dict, strict=True)
