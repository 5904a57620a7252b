"""Backbone architectures: torchvision layout, the TCLR variant, strict loading, heads."""

import pytest
import torch

from severe.errors import SevereError
from severe.models import VideoClassifier, backbone_key_shapes, build_backbone, linear_head, load_backbone_state


def test_r2plus1d_keys_match_torchvision_without_fc():
    from torchvision.models.video import r2plus1d_18
    tv = {k: tuple(v.shape) for k, v in r2plus1d_18().state_dict().items() if not k.startswith("fc.")}
    assert backbone_key_shapes("r2plus1d_18") == tv
    assert len(tv) == 222
    # the mid-channel trap: conv2 reuses the block's mid (230/460/921), not (out, out)
    assert tv["layer2.0.conv2.0.0.weight"] == (230, 128, 1, 3, 3)
    assert tv["layer3.0.conv2.0.0.weight"] == (460, 256, 1, 3, 3)
    assert tv["layer4.0.conv2.0.0.weight"] == (921, 512, 1, 3, 3)


def test_tclr_variant_layout():
    keys = backbone_key_shapes("r2plus1d_18_tclr")
    assert len(keys) == 216
    assert keys["layer4.0.conv1.0.weight"] == (512, 256, 3, 3, 3)
    assert "layer4.0.conv1.0.0.weight" not in keys
    assert keys["layer4.0.conv2.0.0.weight"] == (921, 512, 1, 3, 3)
    params = sum(p.numel() for p in build_backbone("r2plus1d_18_tclr").parameters())
    assert params == 31_505_787 - 512 * 400 - 400


@pytest.mark.parametrize("arch,t_out", [("r2plus1d_18", 1), ("r2plus1d_18_tclr", 2), ("r3d_18", 1)])
def test_forward_shapes_on_a_tiny_clip(arch, t_out):
    torch.manual_seed(0)
    backbone = build_backbone(arch).eval()
    with torch.no_grad():
        x = torch.randn(1, 3, 8, 32, 32)
        assert backbone.forward_features(x).shape == (1, 512, t_out, 2, 2)
        assert backbone(x).shape == (1, 512)


def test_classifier_and_heads():
    torch.manual_seed(0)
    head = linear_head(512, 7, init="normal")
    assert torch.count_nonzero(head.bias) == 0 and 0.005 < head.weight.std() < 0.015
    model = VideoClassifier(build_backbone("r2plus1d_18"), head).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError):
        linear_head(512, 7, init="xavier")


def test_unknown_arch_and_strict_load_errors():
    with pytest.raises(SevereError, match="unknown architecture"):
        build_backbone("resnet50")
    backbone = build_backbone("r2plus1d_18")
    state = backbone.state_dict()
    state["fc.weight"] = torch.zeros(400, 512)
    with pytest.raises(SevereError, match="1 unexpected"):
        load_backbone_state(backbone, state)
