"""The ViT backbones in the registry: every ViT-B and its tiny test twin (same code, family, strides and key
layout up to width/depth), the registry-wide contract on the twins, and full-size key shapes on the meta device."""

from __future__ import annotations

import pytest
import torch

from severe.errors import SevereError
from severe.models import BACKBONES, backbone_key_shapes, build_backbone, check_backbone_contract, register_backbone
from severe.models.vit import VIT_ARCHS
from severe.models.vit_common import CLIP_MEAN, KINETICS_MEAN

FULL = [n for n in VIT_ARCHS if n.startswith("vit_b_")]


def test_every_vit_is_registered_after_the_cnns_with_its_fields():
    names = list(BACKBONES)
    assert names[:3] == ["r2plus1d_18", "r2plus1d_18_tclr", "r3d_18"]
    for name, (builder, fields) in VIT_ARCHS.items():
        spec = BACKBONES[name]
        assert spec.builder is builder and spec.family == fields["family"] and spec.feature_dim == fields["feature_dim"]
        assert (spec.temporal_stride, spec.spatial_stride) == (fields["temporal_stride"], 16)
    assert {n: BACKBONES[n].feature_dim for n in FULL} == dict.fromkeys(FULL, 768)
    assert BACKBONES["vit_b_timesformer"].mean == KINETICS_MEAN and BACKBONES["vit_b_clip"].mean == CLIP_MEAN
    assert (BACKBONES["vit_b_videomae"].temporal_stride, BACKBONES["vit_b_umt"].temporal_stride) == (2, 1)


@pytest.mark.parametrize("name", FULL)
def test_full_size_vits_name_a_twin_of_the_same_code(name):
    spec = BACKBONES[name]
    twin = BACKBONES[spec.test_twin]
    assert spec.test_twin == name.replace("vit_b_", "vit_tiny_") and twin.test_twin is None
    assert (twin.family, twin.temporal_stride, twin.spatial_stride) == (spec.family, spec.temporal_stride,
                                                                        spec.spatial_stride)
    full, tiny = backbone_key_shapes(name), backbone_key_shapes(spec.test_twin)
    assert len(full) > len(tiny)
    # the twin's keys are the full model's keys of its first blocks (the same modules, fewer of them)
    assert set(tiny) <= set(full)
    assert full["patch_embed.proj.weight" if "patch_embed.proj.weight" in full else "conv1.weight"][0] == 768
    with torch.device("meta"):
        assert type(build_backbone(name)) is type(build_backbone(spec.test_twin))


@pytest.mark.parametrize("name", [n for n in VIT_ARCHS if n.startswith("vit_tiny_")])
def test_tiny_twins_keep_the_contract(name):
    spec = BACKBONES[name]
    frames = spec.temporal_stride * 2
    pooled, fmap = check_backbone_contract(build_backbone(name), frames, 48, batch=2)
    assert tuple(pooled) == (2, 64) and tuple(fmap) == (2, 64, 2, 3, 3)


def test_test_twin_must_be_registered_and_alike():
    with pytest.raises(SevereError, match="test_twin 'nope' is not registered"):
        register_backbone("test_vit_x", VIT_ARCHS["vit_tiny_videomae"][0], feature_dim=64, temporal_stride=2,
                          spatial_stride=16, test_twin="nope")
    with pytest.raises(SevereError, match="test_twin 'vit_tiny_umt' has family/strides"):
        register_backbone("test_vit_x", VIT_ARCHS["vit_tiny_videomae"][0], family="videomae", feature_dim=64,
                          temporal_stride=2, spatial_stride=16, test_twin="vit_tiny_umt")
    assert "test_vit_x" not in BACKBONES
