"""Tubelet-Contrast R3D-18 and I3D layouts: name mapping, synthetic files in the original layout, and an
exact, strictly verified conversion (directly, and through convert_object with the method rows)."""

import re

import pytest
import torch
from torchvision.models.video import r3d_18

from severe.checkpoints.convert import convert_object, detect_method
from severe.checkpoints.loading import read_checkpoint
from severe.checkpoints.methods import METHODS
from severe.checkpoints.tc_layouts import (
    i3d_names,
    original_r3d_name,
    r3d_names,
    write_tc_i3d,
    write_tc_r3d,
)
from severe.errors import SevereError
from severe.models.i3d import I3D, build_i3d
from severe.models.registry import BACKBONES, backbone_key_shapes

# The pyvrl R3D naming, written from the original module description.
ORIGINAL_R3D = re.compile(
    r"(stem\.(conv|bn)|layer[1-4]\.[01]\.(conv[12]\.conv|bn[12]|downsample\.conv|downsample_bn))"
    r"\.(weight|bias|running_mean|running_var|num_batches_tracked)"
)


def _tv_r3d_backbone() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return {k: v for k, v in r3d_18().state_dict().items() if not k.startswith("fc.")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One synthetic file per layout (float16 to keep them small), read back weights-only: (object, expected)."""
    root = tmp_path_factory.mktemp("tc")
    out = {}
    for arch, write in (("r3d_18", write_tc_r3d), ("i3d", write_tc_i3d)):
        path = root / arch / "epoch_100.pth"
        expected = write(path, seed=3, dtype=torch.float16)
        out[arch] = read_checkpoint(path), expected
    return out


@pytest.mark.parametrize("original,torchvision", [
    ("stem.conv.weight", "stem.0.weight"),
    ("stem.bn.running_var", "stem.1.running_var"),
    ("layer1.0.conv1.conv.weight", "layer1.0.conv1.0.weight"),
    ("layer1.1.bn1.num_batches_tracked", "layer1.1.conv1.1.num_batches_tracked"),
    ("layer3.1.conv2.conv.weight", "layer3.1.conv2.0.weight"),
    ("layer4.0.bn2.bias", "layer4.0.conv2.1.bias"),
    ("layer2.0.downsample.conv.weight", "layer2.0.downsample.0.weight"),
    ("layer2.0.downsample_bn.running_mean", "layer2.0.downsample.1.running_mean"),
])
def test_r3d_names_hand_cases(original, torchvision):
    assert r3d_names(original) == torchvision
    assert original_r3d_name(torchvision) == original


def test_r3d_names_leave_foreign_names_alone():
    for name in ("fc.0.weight", "stem.conv_s.weight", "layer1.0.conv1.conv_s.weight", "queue", "stem.convx.weight"):
        assert r3d_names(name) == name
    with pytest.raises(ValueError):
        original_r3d_name("fc.weight")


def test_r3d_mapping_is_a_bijection_onto_torchvision_r3d_18():
    tv = _tv_r3d_backbone()
    originals = [original_r3d_name(k) for k in tv]
    assert len(set(originals)) == len(tv) == 120
    assert all(ORIGINAL_R3D.fullmatch(k) for k in originals)
    assert not any(k.endswith("conv.bias") for k in originals)  # the original convolutions have no bias
    assert [r3d_names(k) for k in originals] == list(tv)
    assert i3d_names("mixed_4f.branch_3.1.batch3d.running_var") == "mixed_4f.branch_3.1.batch3d.running_var"


def _convert(obj, rename, target: dict[str, torch.Tensor]):
    """Keep backbone.*, rename, and verify every key and shape against ``target``; report what was dropped."""
    kept, dropped = {}, set()
    for key, value in obj["state_dict"].items():
        if key.startswith("backbone."):
            kept[rename(key[len("backbone."):])] = value
        else:
            dropped.add(key.split(".")[0])
    assert set(kept) == set(target)
    assert all(kept[k].shape == target[k].shape for k in target)
    return kept, dropped


@pytest.mark.parametrize("arch", ["r3d_18", "i3d"])
def test_synthetic_file_converts_exactly(files, arch):
    obj, expected = files[arch]
    if arch == "r3d_18":
        rename, original = r3d_names, original_r3d_name
        with torch.device("meta"):
            model = r3d_18()
        model.fc = torch.nn.Identity()
        head = {"fc.0.weight": (512, 512), "fc.2.weight": (128, 512), "key_fc.2.bias": (128,)}
    else:
        rename, original = i3d_names, i3d_names
        with torch.device("meta"):
            model = I3D()
        head = {"fc.2.weight": (1024, 1024), "fc.4.weight": (128, 1024), "key_fc.4.bias": (128,)}
    assert set(obj) == {"meta", "state_dict", "optimizer"}
    sd = obj["state_dict"]
    assert all(tuple(sd[k].shape) == s for k, s in head.items())
    assert sd["queue"].shape == (128, 16384)

    kept, dropped = _convert(obj, rename, model.state_dict())
    assert dropped == {"key_encoder", "fc", "key_fc", "queue", "queue_ptr"}
    for key, value in kept.items():
        source = sd["backbone." + original(key)]
        assert torch.equal(value, source) and torch.equal(value, expected[key])
        if value.is_floating_point() and value.numel() > 1:
            assert not torch.equal(value, sd["key_encoder." + original(key)])
    model.load_state_dict(kept, strict=True, assign=True)
    state = model.state_dict()
    assert list(state) == list(expected)
    assert all(torch.equal(state[k], v) for k, v in expected.items())


# --- the method rows of severe/checkpoints/methods.py, exercised through convert_object ---

def test_the_rows_name_these_layouts():
    r3d, i3d = METHODS["tubelet_contrast_r3d"], METHODS["tubelet_contrast_i3d"]
    assert (r3d.arch, r3d.rename, r3d.expected_file) == ("r3d_18", r3d_names, "tubelet_contrast/kinetics-400/r3d/epoch_100.pth")
    assert (i3d.arch, i3d.rename, i3d.expected_file) == ("i3d", i3d_names, "tubelet_contrast/kinetics-400/i3d/epoch_100.pth")
    assert BACKBONES["i3d"].builder is build_i3d


@pytest.mark.parametrize("method,arch", [("tubelet_contrast_r3d", "r3d_18"), ("tubelet_contrast_i3d", "i3d")])
def test_convert_object_with_the_method_rows(files, method, arch):
    obj, expected = files[arch]
    assert detect_method(obj) == method
    converted = convert_object(obj, method)
    assert list(converted.state_dict) == list(expected)
    assert all(torch.equal(converted.state_dict[k], v) for k, v in expected.items())
    assert set(converted.dropped) == {"key_encoder", "fc", "key_fc", "queue", "queue_ptr", "meta", "optimizer"}
    assert converted.dropped["key_encoder"] == len(expected)
    assert converted.meta["arch"] == METHODS[method].arch
    with pytest.raises(SevereError, match=f"looks like a '{method}'"):
        convert_object(obj, "tubelet_contrast")


def test_the_two_layouts_are_not_confused(files):
    with pytest.raises(SevereError, match="looks like a 'tubelet_contrast_r3d'"):
        convert_object(files["r3d_18"][0], "tubelet_contrast_i3d")
    with pytest.raises(SevereError, match="looks like a 'tubelet_contrast_i3d'"):
        convert_object(files["i3d"][0], "tubelet_contrast_r3d")
    with torch.device("meta"):
        i3d_shapes = {k: tuple(v.shape) for k, v in I3D().state_dict().items()}
    assert backbone_key_shapes("i3d") == i3d_shapes
