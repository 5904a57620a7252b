"""ViT video backbones by name: ViT-B/16 of each family and tiny variants (same code, depth 2, width 64)
for end-to-end tests.

``VIT_ARCHS[name] = (builder, fields)``: ``builder(**overrides)`` returns the randomly initialised backbone
(keyword overrides such as ``drop_path_rate`` or ``grad_checkpointing``); ``fields`` describe it for the
backbone registry: family, feature_dim, temporal_stride (tubelet), spatial_stride, default_frames,
default_crop and the input normalisation mean/std the family was trained with.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from severe.models.clip_vit import CLIPVideoViT
from severe.models.timesformer import TimeSformer
from severe.models.videomae import VideoMAEViT
from severe.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from severe.models.vit_common import CLIP_MEAN, CLIP_STD, KINETICS_MEAN, KINETICS_STD

#: registry families of these backbones (patch-embedding transformers: inputs must be multiples of the patch size)
VIT_FAMILIES = ("videomae", "timesformer", "clip")

BASE = dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0)
TINY = dict(embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0)
TINY_CROP = 112


def _builder(cls: type[nn.Module], arch: str, **fixed: Any) -> Callable[..., nn.Module]:
    def build(**overrides: Any) -> nn.Module:
        return cls(arch=arch, **{**fixed, **overrides})
    build.__name__ = arch
    build.__doc__ = f"Randomly initialised {arch} ({cls.__name__}); keyword arguments override the defaults."
    return build


def _fields(family: str, dim: int, tubelet: int, frames: int, crop: int, mean: tuple, std: tuple) -> dict[str, Any]:
    return dict(family=family, feature_dim=dim, temporal_stride=tubelet, spatial_stride=16, default_frames=frames,
                default_crop=crop, mean=mean, std=std)


def _table() -> dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]]:
    table = {}
    for size, shape, crop in (("b", BASE, 224), ("tiny", TINY, TINY_CROP)):
        dim = shape["embed_dim"]
        table[f"vit_{size}_videomae"] = (_builder(VideoMAEViT, f"vit_{size}_videomae", tubelet=2, **shape),
                                         _fields("videomae", dim, 2, 16, crop, IMAGENET_MEAN, IMAGENET_STD))
        # MVD: the same network with its 3-D sin-cos position table
        table[f"vit_{size}_mvd"] = (_builder(VideoMAEViT, f"vit_{size}_mvd", tubelet=2, pos_table="sincos_3d", **shape),
                                    _fields("videomae", dim, 2, 16, crop, IMAGENET_MEAN, IMAGENET_STD))
        # UMT single-modality / video-text vision encoder: VideoMAE layout with tubelet 1, 8 frames
        table[f"vit_{size}_umt"] = (_builder(VideoMAEViT, f"vit_{size}_umt", tubelet=1, **shape),
                                    _fields("videomae", dim, 1, 8, crop, IMAGENET_MEAN, IMAGENET_STD))
        table[f"vit_{size}_timesformer"] = (
            _builder(TimeSformer, f"vit_{size}_timesformer", img_size=crop, num_frames=8, **shape),
            _fields("timesformer", dim, 1, 8, crop, KINETICS_MEAN, KINETICS_STD))
        table[f"vit_{size}_clip"] = (
            _builder(CLIPVideoViT, f"vit_{size}_clip", tubelet=1, img_size=crop, num_frames=8, **shape),
            _fields("clip", dim, 1, 8, crop, CLIP_MEAN, CLIP_STD))
    return table


VIT_ARCHS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = _table()


def backbone_kind(arch: str | None) -> str:
    """``ViT`` for a registered architecture of :data:`VIT_FAMILIES`, ``CNN`` for any other registered one, '' if
    unknown (the report's family column)."""
    from severe.models.registry import BACKBONES

    spec = BACKBONES.get(arch) if arch else None
    if spec is None:
        return ""
    return "ViT" if spec.family in VIT_FAMILIES else "CNN"


def build_vit(name: str, **overrides: Any) -> nn.Module:
    """Build the named ViT backbone (KeyError for an unknown name; the registry reports user mistakes)."""
    return VIT_ARCHS[name][0](**overrides)


def register_vit_backbones() -> None:
    """Register every ViT of :data:`VIT_ARCHS` (tiny twins first: a ViT-B names its twin as ``test_twin``, so the
    registry-wide tests build the same code at width 64 instead of 86-121 M parameters)."""
    from severe.models.registry import BACKBONES, register_backbone

    for name in sorted(VIT_ARCHS, key=lambda n: not n.startswith("vit_tiny_")):
        if name in BACKBONES:
            continue
        builder, fields = VIT_ARCHS[name]
        twin = name.replace("vit_b_", "vit_tiny_", 1) if name.startswith("vit_b_") else None
        register_backbone(name, builder, test_twin=twin if twin in VIT_ARCHS else None, **fields)


register_vit_backbones()
