"""I3D (Inception-v1 3-D): compared with a plain functional re-statement of the architecture, padding
hand cases, the original's state-dict names, feature-map sizes and the registry spec."""

import math

import pytest
import torch
import torch.nn.functional as F

from severe.models.contract import check_backbone_contract
from severe.models.i3d import I3D, I3D_SPEC, build_i3d, same_padding
from severe.models.registry import BACKBONES, build_backbone

# Written from the architecture description, independently of severe.models.i3d.
CHANNELS = {  # in, (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj)
    "mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def _axis_pad(x, dim, before, after, value=0.0):
    """Pad tensor dimension ``dim`` with ``before``/``after`` slices of ``value``."""
    parts = []
    for n in (before, after):
        shape = list(x.shape)
        shape[dim] = n
        parts.append(torch.full(shape, value, dtype=x.dtype))
    return torch.cat([parts[0], x, parts[1]], dim=dim)


def _same(x, kernel, stride):
    for dim, k, s in zip((2, 3, 4), kernel, stride):
        total = max(k - s, 0)
        x = _axis_pad(x, dim, total // 2, total - total // 2)
    return x


def ref_unit(x, sd, name, k, s=1):
    kernel, stride = (k,) * 3, (s,) * 3
    x = F.conv3d(_same(x, kernel, stride), sd[f"{name}.conv3d.weight"], stride=stride)
    x = F.batch_norm(x, sd[f"{name}.batch3d.running_mean"], sd[f"{name}.batch3d.running_var"],
                     sd[f"{name}.batch3d.weight"], sd[f"{name}.batch3d.bias"], training=False, eps=1e-5)
    return torch.clamp(x, min=0)


def ref_pool(x, kernel, stride):
    """SAME zero padding, then ceil-mode max-pool spelled out: -inf padding at the end up to the last window."""
    x = _same(x, kernel, stride)
    for dim, k, s in zip((2, 3, 4), kernel, stride):
        length = x.shape[dim]
        out = math.ceil((length - k) / s) + 1
        x = _axis_pad(x, dim, 0, (out - 1) * s + k - length, value=float("-inf"))
    return F.max_pool3d(x, kernel, stride)


def ref_mixed(x, sd, name):
    b0 = ref_unit(x, sd, f"{name}.branch_0", 1)
    b1 = ref_unit(ref_unit(x, sd, f"{name}.branch_1.0", 1), sd, f"{name}.branch_1.1", 3)
    b2 = ref_unit(ref_unit(x, sd, f"{name}.branch_2.0", 1), sd, f"{name}.branch_2.1", 3)
    b3 = ref_unit(ref_pool(x, (3, 3, 3), (1, 1, 1)), sd, f"{name}.branch_3.1", 1)
    return torch.cat([b0, b1, b2, b3], dim=1)


def ref_i3d(x, sd):
    x = ref_unit(x, sd, "conv3d_1a_7x7", 7, 2)
    x = ref_pool(x, (1, 3, 3), (1, 2, 2))
    x = ref_unit(x, sd, "conv3d_2b_1x1", 1)
    x = ref_unit(x, sd, "conv3d_2c_3x3", 3)
    x = ref_pool(x, (1, 3, 3), (1, 2, 2))
    x = ref_mixed(ref_mixed(x, sd, "mixed_3b"), sd, "mixed_3c")
    x = ref_pool(x, (3, 3, 3), (2, 2, 2))
    for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
        x = ref_mixed(x, sd, name)
    x = ref_pool(x, (2, 2, 2), (2, 2, 2))
    return ref_mixed(ref_mixed(x, sd, "mixed_5b"), sd, "mixed_5c")


def _randomised(seed=0):
    """An eval-mode I3D whose every weight and BN statistic is random (finite activations)."""
    torch.manual_seed(seed)
    model = build_i3d().eval()
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("conv3d.weight"):
                t.normal_(0, math.sqrt(2.0 / t[0].numel()))
            elif key.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif key.endswith(("running_mean", "batch3d.bias")):
                t.normal_(0, 0.1)
            elif key.endswith("batch3d.weight"):
                t.uniform_(0.8, 1.2)
    return model


@pytest.mark.parametrize("shape", [(1, 3, 16, 64, 64), (2, 3, 13, 47, 39)])
def test_forward_equals_the_functional_description(shape):
    model = _randomised()
    sd = model.state_dict()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model(x)
        ref = ref_i3d(x, sd)
    assert feats.shape == ref.shape and feats.shape[:2] == (shape[0], 1024)
    assert ref.abs().max() > 0.1 and torch.isfinite(ref).all()
    torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pooled, ref.mean(dim=(2, 3, 4)), rtol=1e-4, atol=1e-5)


def test_ceil_mode_and_same_padding_are_what_the_odd_input_needs():
    # 47 -> conv 23 -> pool(3, 2) on 23 + 0 + 1: ceil gives 12 windows, floor would give 11
    with torch.no_grad():
        out = _randomised().maxPool3d_2a_3x3(torch.rand(1, 2, 3, 23, 23))
    assert out.shape == (1, 2, 3, 12, 12)


def test_same_padding_hand_cases():
    assert same_padding(7, 2) == (2, 3, 2, 3, 2, 3)
    assert same_padding((1, 3, 3), (1, 2, 2)) == (0, 1, 0, 1, 0, 0)
    assert same_padding((3, 3, 3), (1, 1, 1)) == (1,) * 6
    assert same_padding(2, 2) == (0,) * 6
    assert same_padding(1, 1) == (0,) * 6
    assert same_padding((3, 1, 2), (2, 1, 1)) == (0, 1, 0, 0, 0, 1)  # F.pad order: W, H, T


@pytest.mark.parametrize("size,expected", [(16, 8), (15, 7), (14, 7), (9, 4)])
def test_stem_conv_kernel7_stride2_pads_two_before_three_after(size, expected):
    model = _randomised()
    unit = model.conv3d_1a_7x7
    x = torch.randn(1, 3, size, size + 1, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = unit(x)
        padded = torch.zeros(1, 3, size + 5, size + 6, size + 5)
        padded[:, :, 2:2 + size, 2:3 + size, 2:2 + size] = x
        raw = F.conv3d(padded, unit.conv3d.weight, stride=2)
        manual = torch.relu(F.batch_norm(raw, unit.batch3d.running_mean, unit.batch3d.running_var,
                                         unit.batch3d.weight, unit.batch3d.bias, training=False))
        symmetric = F.conv3d(x, unit.conv3d.weight, stride=2, padding=3)  # 3 zeros on both sides
    assert out.shape[2:] == (expected, (size + 1) // 2, expected)
    torch.testing.assert_close(out, manual, rtol=1e-5, atol=1e-5)
    assert symmetric.shape != raw.shape or not torch.allclose(symmetric, raw, atol=1e-3)


def test_state_dict_names_and_shapes_of_the_original_module():
    with torch.device("meta"):
        sd = I3D().state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert shapes["conv3d_1a_7x7.batch3d.running_mean"] == (64,)
    assert shapes["conv3d_2b_1x1.conv3d.weight"] == (64, 64, 1, 1, 1)
    assert shapes["conv3d_2c_3x3.conv3d.weight"] == (192, 64, 3, 3, 3)
    assert shapes["mixed_3b.branch_0.conv3d.weight"] == (64, 192, 1, 1, 1)
    assert shapes["mixed_3b.branch_1.0.batch3d.running_mean"] == (96,)
    assert shapes["mixed_3b.branch_3.1.conv3d.weight"] == (32, 192, 1, 1, 1)
    assert not any(k.endswith(".conv3d.bias") for k in shapes)  # convolutions have no bias
    assert not any(k.startswith(("maxPool", "avgpool")) or "branch_3.0" in k for k in shapes)
    for name, (cin, (c0, c1r, c1, c2r, c2, c3)) in CHANNELS.items():
        assert shapes[f"{name}.branch_0.conv3d.weight"] == (c0, cin, 1, 1, 1)
        assert shapes[f"{name}.branch_1.0.conv3d.weight"] == (c1r, cin, 1, 1, 1)
        assert shapes[f"{name}.branch_1.1.conv3d.weight"] == (c1, c1r, 3, 3, 3)
        assert shapes[f"{name}.branch_2.0.conv3d.weight"] == (c2r, cin, 1, 1, 1)
        assert shapes[f"{name}.branch_2.1.conv3d.weight"] == (c2, c2r, 3, 3, 3)
        assert shapes[f"{name}.branch_3.1.conv3d.weight"] == (c3, cin, 1, 1, 1)
    units = 3 + 6 * len(CHANNELS)
    assert len(shapes) == 6 * units  # conv weight + 5 BN entries per unit, nothing else
    convs = sum(math.prod(s) for k, s in shapes.items() if k.endswith("conv3d.weight"))
    bns = sum(2 * s[0] for k, s in shapes.items() if k.endswith("batch3d.weight"))
    with torch.device("meta"):
        assert sum(p.numel() for p in I3D().parameters()) == convs + bns == 12_287_264


@pytest.fixture(scope="module")
def meta_i3d():
    """Shapes only: an I3D on the meta device."""
    with torch.device("meta"):
        return I3D()


@pytest.mark.parametrize("clip,fmap", [((32, 224, 224), (4, 7, 7)), ((16, 112, 112), (2, 4, 4)),
                                       ((8, 64, 96), (1, 2, 3)), ((15, 45, 45), (2, 2, 2))])
def test_forward_features_sizes(meta_i3d, clip, fmap):
    out = meta_i3d.forward_features(torch.empty(2, 3, *clip, device="meta"))
    assert tuple(out.shape) == (2, 1024, *fmap)


def test_contract_and_spec(meta_i3d):
    model = build_i3d()
    assert model.arch == "i3d" and model.feature_dim == 1024 == I3D_SPEC["feature_dim"]
    t, h = I3D_SPEC["default_frames"], I3D_SPEC["default_crop"]
    out = meta_i3d.forward_features(torch.empty(1, 3, t, h, h, device="meta"))
    assert tuple(out.shape[2:]) == (t // I3D_SPEC["temporal_stride"], h // I3D_SPEC["spatial_stride"],
                                    h // I3D_SPEC["spatial_stride"])
    assert (I3D_SPEC["temporal_stride"], I3D_SPEC["spatial_stride"]) == (8, 32)
    assert I3D_SPEC["mean"] == (0.485, 0.456, 0.406) and I3D_SPEC["std"] == (0.229, 0.224, 0.225)


def test_i3d_is_a_built_in_backbone_and_the_contract_holds():
    spec = BACKBONES["i3d"]
    assert spec.builder is build_i3d and {k: getattr(spec, k) for k in I3D_SPEC} == I3D_SPEC
    assert (spec.family, spec.feature_dim, spec.temporal_stride, spec.spatial_stride) == ("i3d", 1024, 8, 32)
    assert (spec.default_frames, spec.default_crop) == (32, 224)
    torch.manual_seed(0)
    backbone = build_backbone("i3d")
    assert isinstance(backbone, I3D) and backbone.arch == "i3d" and backbone.spec is spec
    pooled, fmap = check_backbone_contract(backbone, 8, 64, batch=2)
    assert tuple(pooled) == (2, 1024) and tuple(fmap) == (2, 1024, 1, 2, 2)
