"""Backbones: the registry and its contract (run over every registered architecture), torchvision layout,
the TCLR variant, strict loading, heads, and the three task models on any backbone."""

import dataclasses

import pytest
import torch
from torch import nn
from torchvision.ops import roi_align

from severe.checkpoints import SCRATCH_META, Converted, build_initialised_backbone
from severe.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from severe.detection.model import build_detection_model
from severe.errors import SevereError
from severe.models import (ARCHITECTURES, BACKBONES, VideoClassifier, backbone_key_shapes, build_backbone,
                           check_backbone_contract, get_backbone_spec, linear_head, load_backbone_state,
                           register_backbone)
from severe.multilabel.model import build_multilabel_model
from severe.repetition.model import RepetitionCounter
from tests.helpers import DummyBackbone, tiny_clip_size

DUMMY = "test_dummy_24d"
# every architecture registered at collection time, plus the dummy; a full-size ViT is covered by its small test twin
# (same code, family and strides: tests/models/test_vit_registry.py)
ARCHS = [*(name for name, spec in BACKBONES.items() if spec.test_twin is None), DUMMY]


@pytest.fixture(autouse=True, scope="module")
def dummy_backbone():
    register_backbone(DUMMY, DummyBackbone, feature_dim=24, temporal_stride=2, spatial_stride=4, default_frames=8,
                      default_crop=32)
    yield DUMMY
    BACKBONES.pop(DUMMY)


@pytest.fixture
def registered():
    """Register temporary architectures; removed after the test."""
    names = []

    def add(name, builder, **spec):
        names.append(name)
        return register_backbone(name, builder, **spec)

    yield add
    for name in names:
        BACKBONES.pop(name, None)


# ------------------------------------------------------------------------------------------- registry + contract

@pytest.mark.parametrize("arch", ARCHS)
def test_every_registered_backbone_keeps_its_contract(arch):
    torch.manual_seed(0)
    backbone = build_backbone(arch)
    spec = BACKBONES[arch]
    assert backbone.arch == arch and backbone.spec is spec and backbone.feature_dim == spec.feature_dim
    frames, crop = tiny_clip_size(arch)
    pooled, fmap = check_backbone_contract(backbone, frames, crop, batch=2)
    ts, ss = spec.temporal_stride, spec.spatial_stride
    assert tuple(pooled) == (2, spec.feature_dim)
    assert tuple(fmap) == (2, spec.feature_dim, frames // ts, crop // ss, crop // ss)
    assert backbone.training  # the check ran in eval mode and restored the mode
    assert len(spec.mean) == len(spec.std) == 3 and spec.default_frames % ts == 0 and spec.default_crop % ss == 0


def test_narrow_r2plus1d_is_r2plus1d_18_at_an_eighth_of_the_width():
    """The demo's backbone: torchvision's R(2+1)D-18 keys with every width divided by 8. The stem has 45 * 8 // 64
    = 5 spatial channels, and both (2+1)D convs of a block from i to o channels have i*o*27 // (i*9 + 3*o) mid
    channels (torchvision's BasicBlock rule), computed here from the full model's shapes."""
    full, narrow = backbone_key_shapes("r2plus1d_18"), backbone_key_shapes("r2plus1d_18_w8")
    assert list(full) == list(narrow)
    mid = {}  # key prefix of a (2+1)D conv -> its mid channels at 1/8 width
    for key, shape in full.items():
        if len(shape) == 5 and shape[2:] == (1, 3, 3) and ".conv1." in key:  # spatial half of a block's first conv
            i, o = shape[1] // 8, full[key.replace(".0.weight", ".3.weight")][0] // 8
            mid[key[:-len(".0.weight")]] = mid[key[:-len(".0.weight")].replace("conv1", "conv2")] = \
                i * o * 27 // (i * 9 + 3 * o)
    assert len(mid) == 16  # 8 blocks x 2 convs
    for key, shape in full.items():
        prefix = key.rsplit(".", 2)[0]
        if key == "stem.0.weight":
            expected = (5, 3, 1, 7, 7)
        elif key.startswith("stem.1."):
            expected = shape if key.endswith("num_batches_tracked") else (5,)
        elif key == "stem.3.weight":
            expected = (8, 5, 3, 1, 1)
        elif prefix in mid and key.endswith(".0.weight"):
            expected = (mid[prefix], shape[1] // 8, 1, 3, 3)
        elif prefix in mid and key.split(".")[-2] == "1" and not key.endswith("num_batches_tracked"):
            expected = (mid[prefix],)  # the BatchNorm between the two halves
        elif prefix in mid and key.endswith(".3.weight"):
            expected = (shape[0] // 8, mid[prefix], 3, 1, 1)
        else:  # BatchNorms after a block's conv, downsample convs: widths / 8
            expected = tuple(d // 8 for d in shape[:2]) + tuple(shape[2:]) if shape else shape
        assert narrow[key] == expected, key
    assert build_backbone("r2plus1d_18_w8")(torch.randn(2, 3, 8, 32, 32)).shape == (2, 64)


def test_builtin_specs_record_the_measured_strides():
    got = {name: (s.family, s.feature_dim, s.temporal_stride, s.spatial_stride) for name, s in BACKBONES.items()
           if name != DUMMY and not name.startswith("vit_")}  # the ViTs: tests/models/test_vit_registry.py
    assert got == {"r2plus1d_18": ("r2plus1d", 512, 8, 16), "r2plus1d_18_tclr": ("r2plus1d", 512, 4, 16),
                   "r2plus1d_18_w8": ("r2plus1d", 64, 8, 16), "r3d_18": ("r3d", 512, 8, 16),
                   "i3d": ("i3d", 1024, 8, 32)}
    for name in got:
        spec = BACKBONES[name]
        assert (spec.default_frames, spec.default_crop) == (32, 224 if name == "i3d" else 112)
        assert spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD
        assert list(spec.mean) == SCRATCH_META["normalize"]["mean"] and list(spec.std) == SCRATCH_META["normalize"]["std"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        BACKBONES["r2plus1d_18"].feature_dim = 768


def test_contract_checker_catches_wrong_dims_and_strides(registered):
    registered("test_wrong_dim", DummyBackbone, feature_dim=32, temporal_stride=2, spatial_stride=4)
    with pytest.raises(SevereError, match=r"forward on \(1, 3, 8, 32, 32\) gave \(1, 24\), expected \(1, 32\)"):
        check_backbone_contract(build_backbone("test_wrong_dim"), 8, 32)
    registered("test_wrong_stride", DummyBackbone, feature_dim=24, temporal_stride=2, spatial_stride=8)
    with pytest.raises(SevereError, match=r"gave \(1, 24, 4, 8, 8\), expected \(1, 24, 4, 4, 4\).*spatial stride 8"):
        check_backbone_contract(build_backbone("test_wrong_stride"), 8, 32)
    with pytest.raises(SevereError, match="frames must be a multiple of 2 and crop of 4 .* got 7 and 32"):
        check_backbone_contract(build_backbone(DUMMY), 7, 32)
    registered("test_no_features", lambda: nn.Sequential(nn.Conv3d(3, 24, 1), nn.AdaptiveAvgPool3d(1), nn.Flatten()),
               feature_dim=24, temporal_stride=1, spatial_stride=1)
    with pytest.raises(SevereError, match="has no forward_features"):
        check_backbone_contract(build_backbone("test_no_features"), 2, 4)


def test_register_backbone_validates_its_spec(registered):
    spec = registered("test_spec", DummyBackbone, feature_dim=24, temporal_stride=2, spatial_stride=4, mean=[0.5] * 3,
                      std=(0.25, 0.25, 0.25))
    assert spec is BACKBONES["test_spec"] and spec.family == "custom" and spec.builder is DummyBackbone
    assert (spec.default_frames, spec.default_crop, spec.mean, spec.std) == (32, 112, (0.5,) * 3, (0.25,) * 3)
    assert ARCHITECTURES["test_spec"] is DummyBackbone and "test_spec" in ARCHITECTURES
    with pytest.raises(SevereError, match="'test_spec' is already registered"):
        register_backbone("test_spec", DummyBackbone, feature_dim=24, temporal_stride=2, spatial_stride=4)
    bad = [({"feature_dim": 0}, "feature_dim must be a positive integer, got 0"),
           ({"temporal_stride": 1.5}, "temporal_stride must be a positive integer, got 1.5"),
           ({"spatial_stride": None}, "spatial_stride must be a positive integer, got None"),
           ({"mean": (0.5, 0.5)}, r"mean needs 3 values \(R, G, B\), got \[0.5, 0.5\]")]
    for change, message in bad:
        kwargs = {"feature_dim": 24, "temporal_stride": 2, "spatial_stride": 4, **change}
        with pytest.raises(SevereError, match=message):
            register_backbone("test_bad", DummyBackbone, **kwargs)
        assert "test_bad" not in BACKBONES
    with pytest.raises(TypeError):  # the dims are required: no silent 512 / stride-16 default
        register_backbone("test_bad", DummyBackbone)


def test_architectures_is_a_read_only_view_of_the_registry():
    assert list(ARCHITECTURES) == list(BACKBONES) and len(ARCHITECTURES) == len(BACKBONES)
    assert ARCHITECTURES[DUMMY] is DummyBackbone and ARCHITECTURES["r3d_18"] is BACKBONES["r3d_18"].builder
    with pytest.raises(TypeError):
        ARCHITECTURES["x"] = DummyBackbone


def test_unknown_names_are_one_line_errors():
    for call in (lambda: get_backbone_spec("resnet50"), lambda: build_backbone("resnet50")):
        with pytest.raises(SevereError) as err:
            call()
        assert str(err.value).startswith("unknown architecture 'resnet50'; known: r2plus1d_18, r2plus1d_18_tclr, r3d_18, "
                                         "i3d")
        assert "\n" not in str(err.value)
    with pytest.raises(SevereError, match="needs an architecture name or weights"):
        build_backbone(None)


def test_a_builder_declaring_another_dim_is_refused(registered):
    class Declares(DummyBackbone):
        feature_dim = 24

    registered("test_declares", Declares, feature_dim=48, temporal_stride=2, spatial_stride=4)
    with pytest.raises(SevereError, match="declares feature_dim 24 but is registered with feature_dim 48"):
        build_backbone("test_declares")


# ------------------------------------------------------------------------------------------- weights

def _weights(arch: str, seed: int, method: str = "moco") -> Converted:
    torch.manual_seed(seed)
    return Converted(build_backbone(arch).state_dict(), {"arch": arch, "method": method}, {})


def test_build_backbone_loads_weights_of_their_own_arch_exactly():
    weights = _weights(DUMMY, seed=1)
    torch.manual_seed(2)
    for backbone in (build_backbone(None, weights), build_backbone("", weights), build_backbone(DUMMY, weights),
                     build_initialised_backbone(weights)):
        assert backbone.arch == DUMMY and backbone.feature_dim == 24
        state = backbone.state_dict()
        assert list(state) == list(weights.state_dict)
        assert all(torch.equal(state[k], v) for k, v in weights.state_dict.items())
    scratch = build_initialised_backbone(None)
    assert scratch.arch == SCRATCH_META["arch"] and scratch.spec is BACKBONES["r2plus1d_18"]


def test_weights_of_another_arch_are_refused_in_one_line():
    weights = _weights(DUMMY, seed=1, method="tclr")
    with pytest.raises(SevereError) as err:
        build_backbone("r3d_18", weights)
    message = str(err.value)
    assert message.startswith("architecture 'r3d_18' differs from the architecture of the 'tclr' weights (test_dummy_24d)")
    assert "\n" not in message


def test_strict_loading_refuses_missing_unexpected_and_misshapen_keys():
    good = _weights(DUMMY, seed=1)
    first = next(iter(good.state_dict))
    missing = Converted({k: v for k, v in good.state_dict.items() if k != first}, good.meta, {})
    extra = Converted({**good.state_dict, "fc.weight": torch.zeros(400, 512)}, good.meta, {})
    reshaped = Converted({**good.state_dict, first: good.state_dict[first][:1]}, good.meta, {})
    cases = [(missing, f"1 missing \\(e.g. {first}\\)"), (extra, r"1 unexpected \(e.g. fc.weight\)"),
             (reshaped, f"1 with wrong shape \\(e.g. {first}: expected \\(24, 3, 2, 4, 4\\), found \\(1, 3, 2, 4, 4\\)")]
    for weights, words in cases:
        with pytest.raises(SevereError, match=f"weights of method 'moco' do not fit architecture {DUMMY}: {words}"):
            build_backbone(None, weights)
    backbone = build_backbone("r2plus1d_18")
    state = backbone.state_dict()
    del state["stem.0.weight"]
    with pytest.raises(SevereError, match=r"weights do not fit architecture r2plus1d_18: 1 missing \(e.g. stem.0.weight\); "
                                          r"1 unexpected \(e.g. fc.weight\)"):
        load_backbone_state(backbone, {**state, "fc.weight": torch.zeros(400, 512)})


# ------------------------------------------------------------------------------------------- torchvision layout

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


def test_classifier_and_heads():
    torch.manual_seed(0)
    head = linear_head(512, 7, init="normal")
    assert torch.count_nonzero(head.bias) == 0 and 0.005 < head.weight.std() < 0.015
    model = VideoClassifier(build_backbone("r2plus1d_18"), head).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError):
        linear_head(512, 7, init="xavier")


def test_classifier_normalises_uint8_clips_on_its_device():
    """uint8 clips: (x / 255 - mean) / std per channel (hand-computed), BGR swapped after; float clips unchanged;
    the constants stay out of the state dict; no normalizer -> a clear error."""
    from severe.data.transforms import Normalization
    from severe.models import ClipNormalizer

    x = torch.randint(0, 256, (2, 3, 2, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = (0.5, 0.25, 0.125), (0.5, 0.25, 0.2)
    want = torch.stack([(x[:, c].double() / 255 - mean[c]) / std[c] for c in range(3)], 1)
    rgb = ClipNormalizer(*Normalization(mean, std).affine())
    assert torch.allclose(rgb(x).double(), want, rtol=0, atol=1e-6) and rgb(x).dtype == torch.float32
    assert torch.allclose(ClipNormalizer(*Normalization(mean, std).affine(), "BGR")(x).double(), want.flip(1), rtol=0, atol=1e-6)
    assert torch.allclose(ClipNormalizer(*Normalization(None, None).affine())(x).double(), x.double() / 255, rtol=0, atol=1e-7)
    f = torch.randn(2, 3, 2, 4, 4)
    assert rgb(f) is f
    with pytest.raises(ValueError, match="uint8 clips"):
        rgb(torch.zeros(2, 1, 2, 4, 4, dtype=torch.uint8))

    torch.manual_seed(0)
    plain = VideoClassifier(build_backbone("r2plus1d_18"), linear_head(512, 3)).eval()
    model = VideoClassifier(plain.backbone, plain.head, rgb).eval()
    assert model.state_dict().keys() == plain.state_dict().keys()
    clips = torch.randint(0, 256, (2, 3, 4, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(clips), plain(want_of(clips, mean, std)), rtol=0, atol=1e-4)
        with pytest.raises(ValueError, match="ClipNormalizer"):
            plain(clips)


def want_of(clips: torch.Tensor, mean, std) -> torch.Tensor:
    return torch.stack([(clips[:, c].float() / 255 - mean[c]) / std[c] for c in range(3)], 1)


# ------------------------------------------------------------------------------------------- task models

@pytest.mark.parametrize("arch", ARCHS)
def test_detection_model_reads_dim_and_stride_from_the_backbone(arch):
    torch.manual_seed(0)
    spec = BACKBONES[arch]
    model = build_detection_model(arch, num_classes=5, dropout=0.0).eval()
    assert model.head.projection.in_features == spec.feature_dim
    assert model.head.spatial_scale == 1.0 / spec.spatial_stride
    frames, crop = tiny_clip_size(arch)
    clips = torch.randn(2, 3, frames, crop, crop)
    rois = torch.tensor([[0.0, 0, 0, crop, crop], [1.0, 4, 4, crop // 2, crop - 4]])
    with torch.inference_mode():
        feats = model.backbone.forward_features(clips)
        manual = roi_align(feats.mean(dim=2), rois, (7, 7), 1.0 / spec.spatial_stride, 0, True).amax(dim=(2, 3))
        torch.testing.assert_close(model.head.pool(feats, rois), manual)
        probs = model(clips, rois)
    assert probs.shape == (2, 5) and ((probs > 0) & (probs < 1)).all()


def test_detection_spatial_scale_factor_must_match_the_backbone_stride():
    """The runner passes DETECTION.SPATIAL_SCALE_FACTOR (16): R(2+1)D-18 keeps RoIAlign at 1/16, as before."""
    assert build_detection_model("r2plus1d_18", spatial_scale_factor=16).head.spatial_scale == 1.0 / 16
    assert build_detection_model(DUMMY, spatial_scale_factor=4).head.spatial_scale == 1.0 / 4
    with pytest.raises(SevereError, match=f"DETECTION.SPATIAL_SCALE_FACTOR 16 does not match the spatial stride 4 of "
                                          f"backbone '{DUMMY}'; set it to 4"):
        build_detection_model(DUMMY, spatial_scale_factor=16)


@pytest.mark.parametrize("arch", ARCHS)
def test_multilabel_model_reads_dim_from_the_backbone(arch):
    torch.manual_seed(0)
    model = build_multilabel_model(arch, num_classes=5, dropout=0.0).eval()
    assert model.head.in_features == BACKBONES[arch].feature_dim
    frames, crop = tiny_clip_size(arch)
    x = torch.randn(2, 3, frames, crop, crop)
    with torch.inference_mode():
        out = model(x)
        torch.testing.assert_close(out, model.head(model.backbone(x)))
    assert out.shape == (2, 5)


@pytest.mark.parametrize("arch", ARCHS)
def test_repetition_counter_reads_dim_and_stride_from_the_backbone(arch):
    torch.manual_seed(0)
    spec = BACKBONES[arch]
    crop = spec.spatial_stride  # 1 x 1 feature map: enough for the heads
    backbone = build_backbone(arch).eval()
    same = RepetitionCounter(backbone, 3, "same").eval()
    split = RepetitionCounter(backbone, 3, "split").eval()
    assert {same.cls_1.in_features, same.box_2.in_features, split.cls_2.in_features} == {spec.feature_dim}
    x = torch.randn(2, 3, 2 * spec.temporal_stride, crop, crop)  # two feature-map time steps: one per stream
    with torch.inference_mode():
        for model in (same, split):
            cls_1, box_1, cls_2, box_2 = model(x)
            assert cls_1.shape == cls_2.shape == (2, 2, 3) and box_1.shape == box_2.shape == (2, 3)
        fm = backbone.forward_features(x)
        f1, f2 = split.stream_vectors(x)
        torch.testing.assert_close(f1, fm[:, :, :1].mean(dim=(2, 3, 4)))
        torch.testing.assert_close(f2, fm[:, :, 1:].mean(dim=(2, 3, 4)))
        with pytest.raises(SevereError, match=f"got 1 for {spec.temporal_stride} input frames; use a multiple of "
                                              f"{2 * spec.temporal_stride} frames per stream"):
            split(x[:, :, : spec.temporal_stride])
