"""Checkpoint conversion: exact round trips for every method, detection, and every refusal."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from severe.checkpoints import METHODS, convert_file, convert_object, detect_method, load_weights, save_converted
from severe.checkpoints.methods import ctp_names, numbered_stages
from severe.checkpoints.vit_methods import ViTMethodSpec
from severe.cli import main as severe_main
from severe.errors import SevereError
from severe.models import backbone_key_shapes, build_backbone
from severe.checkpoints import build_initialised_backbone
from severe.synth.checkpoints import synthetic_checkpoint, to_ctp_name, write_synthetic_checkpoint

ALL = [m for m in METHODS if not isinstance(METHODS[m], ViTMethodSpec)]  # the ViT rows: tests/checkpoints/test_vit_methods.py


def assert_exact(state: dict, expected: dict) -> None:
    assert list(state) == list(expected)
    for k, v in expected.items():
        assert state[k].dtype == v.dtype, k
        assert torch.equal(state[k], v), k


@pytest.mark.parametrize("method", ALL)
def test_round_trip_in_memory_exact(method):
    obj, expected = synthetic_checkpoint(method, seed=3)
    converted = convert_object(obj, method, file_name=METHODS[method].expected_file)
    assert_exact(converted.state_dict, expected)
    assert len(converted.state_dict) == {"tclr": 216, "tubelet_contrast_r3d": 120, "tubelet_contrast_i3d": 342}.get(method, 222)
    assert not any(k.startswith("fc.") for k in converted.state_dict)


@pytest.mark.parametrize("method", ALL)
def test_detection(method):
    obj, _ = synthetic_checkpoint(method, seed=0)
    assert detect_method(obj, file_name="ckpt/" + METHODS[method].expected_file) == method


def test_moco_family_name_heuristic():
    obj, _ = synthetic_checkpoint("moco")
    assert detect_method(obj, file_name="moco/checkpoint_0199.pth.tar") == "moco"
    assert detect_method(obj, file_name="/x/VideoMoCo/ckpt.pth") == "video_moco"
    assert detect_method(obj, file_name="r2plus1D_checkpoint_0199.pth.tar") == "video_moco"
    # the two share one layout and accept each other's files
    convert_object(obj, "video_moco")


@pytest.mark.parametrize("method", ["moco", "selavi", "avid_cma", "pretext_contrast", "tclr"])
def test_single_gpu_saves_without_module_prefix(method):
    obj, expected = synthetic_checkpoint(method, seed=5, variant="no_module")
    assert detect_method(obj) in (method, "video_moco")
    assert_exact(convert_object(obj, method).state_dict, expected)


def test_gdt_with_extra_module_prefix_is_tolerated():
    obj, expected = synthetic_checkpoint("gdt", seed=2)
    obj["model"] = {"module." + k: v for k, v in obj["model"].items()}
    assert_exact(convert_object(obj, "gdt").state_dict, expected)


def test_momentum_encoder_never_taken():
    obj, expected = synthetic_checkpoint("moco", seed=4)
    # the key encoder holds different values: converting must give the query encoder exactly
    q = convert_object(obj, "moco").state_dict
    k_values = obj["state_dict"]["module.encoder_k.stem.0.weight"]
    assert not torch.equal(q["stem.0.weight"], k_values)
    assert torch.equal(q["stem.0.weight"], expected["stem.0.weight"])


def test_missing_num_batches_tracked_filled_with_zero():
    obj, expected = synthetic_checkpoint("supervised", variant="no_num_batches")
    out = convert_object(obj, "supervised").state_dict
    assert_exact(out, expected)
    assert out["stem.1.num_batches_tracked"].dtype == torch.long and out["stem.1.num_batches_tracked"].item() == 0


def test_half_precision_source_stays_half():
    obj, expected = synthetic_checkpoint("ctp", dtype=torch.float16)
    out = convert_object(obj, "ctp").state_dict
    assert out["stem.0.weight"].dtype == torch.float16
    assert_exact(out, expected)


def test_renaming_tables():
    assert numbered_stages("0.1.running_mean") == "stem.1.running_mean"
    assert numbered_stages("3.1.conv2.0.0.weight") == "layer3.1.conv2.0.0.weight"
    assert ctp_names("stem.conv_t.weight") == "stem.3.weight"
    assert ctp_names("layer2.0.conv1.bn_s.running_var") == "layer2.0.conv1.0.1.running_var"
    assert ctp_names("layer2.0.bn2.weight") == "layer2.0.conv2.1.weight"
    assert ctp_names("layer4.0.downsample.conv.weight") == "layer4.0.downsample.0.weight"
    assert ctp_names("layer4.0.downsample_bn.bias") == "layer4.0.downsample.1.bias"
    # round trip over every torchvision key
    for key in backbone_key_shapes("r2plus1d_18"):
        assert ctp_names(to_ctp_name(key)) == key


@pytest.mark.parametrize("method,variant,words", [
    ("ctp", "upstream", "288 mid channels"),
    ("tubelet_contrast", "upstream", "original CtP code"),
    ("avid_cma", "fair", "FAIR's original AVID-CMA"),
    ("rspnet", "vcop", "released RSPNet"),
])
def test_incompatible_releases_refused(method, variant, words):
    obj, _ = synthetic_checkpoint(method, variant=variant)
    with pytest.raises(SevereError, match=words):
        convert_object(obj, method)


def test_wrong_method_names_the_real_one():
    obj, _ = synthetic_checkpoint("gdt")
    with pytest.raises(SevereError, match="looks like a 'gdt' checkpoint"):
        convert_object(obj, "selavi")
    obj, _ = synthetic_checkpoint("tubelet_contrast")
    with pytest.raises(SevereError, match="looks like a 'tubelet_contrast'"):
        convert_object(obj, "ctp")


def test_tclr_file_refused_for_plain_architecture_and_vice_versa():
    obj, _ = synthetic_checkpoint("tclr")
    with pytest.raises(SevereError, match="tclr"):
        convert_object({"state_dict": obj["state_dict"]}, "moco")
    # a plain R(2+1)D under TCLR's prefix is not a TCLR file
    plain = {"state_dict": {"module.0." + k: v for k, v in synthetic_checkpoint("supervised")[1].items()}}
    with pytest.raises(SevereError, match="tclr layout"):
        convert_object(plain, "tclr")


def test_missing_and_shape_errors_are_named():
    obj, _ = synthetic_checkpoint("moco")
    del obj["state_dict"]["module.encoder_q.layer3.1.conv2.1.weight"]
    with pytest.raises(SevereError, match=r"1 missing keys \(e.g. layer3.1.conv2.1.weight\)"):
        convert_object(obj, "moco")
    obj, _ = synthetic_checkpoint("moco")
    obj["state_dict"]["module.encoder_q.layer1.0.conv1.0.0.weight"] = torch.zeros(144, 64, 1, 3, 5)
    with pytest.raises(SevereError, match=r"layer1.0.conv1.0.0.weight' has shape \(144, 64, 1, 3, 5\), expected \(144, 64, 1, 3, 3\)"):
        convert_object(obj, "moco")
    obj, _ = synthetic_checkpoint("avid_cma")
    obj["model"]["module.video_model.layer5.0.weight"] = torch.zeros(1)
    with pytest.raises(SevereError, match="unexpected keys"):
        convert_object(obj, "avid_cma")


def test_unknown_method():
    with pytest.raises(SevereError, match="unknown method 'simclr'"):
        convert_object({}, "simclr")


# ----------------------------------------------------------------------------- files and the CLI

def test_file_round_trip_weights_only_and_meta(tmp_path):
    src = tmp_path / "tclr" / "rpd18kin400.pth"
    expected = write_synthetic_checkpoint("tclr", src, seed=7)
    out = tmp_path / "tclr_converted.pth"
    assert severe_main(["convert", "--method", "tclr", str(src), str(out), "--trust"]) == 0
    saved = torch.load(out, weights_only=True)
    assert set(saved) == {"state_dict", "meta"}
    assert_exact(saved["state_dict"], expected)
    meta = saved["meta"]
    assert meta["method"] == "tclr" and meta["arch"] == "r2plus1d_18_tclr"
    assert meta["normalize"] is None and meta["channel_order"] == "BGR"
    import hashlib
    assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    # the converted file loads strictly into the TCLR backbone and runs
    weights = load_weights(out)
    backbone = build_initialised_backbone(weights)
    assert torch.equal(backbone.state_dict()["layer4.0.conv1.0.weight"], expected["layer4.0.conv1.0.weight"])
    with torch.no_grad():
        fmap = backbone.forward_features(torch.randn(1, 3, 8, 32, 32))
    assert fmap.shape == (1, 512, 2, 2, 2)  # no temporal stride in layer4: 8 -> 2 (plain arch gives 1)


def test_ctp_meta_records_bn_eps_and_imagenet(tmp_path):
    src = tmp_path / "ctp.pth"
    write_synthetic_checkpoint("ctp", src)
    c = convert_file(src, "ctp")
    assert c.meta["bn_eps_pretraining"] == 0.001
    assert c.meta["normalize"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert c.meta["channel_order"] == "RGB"


@pytest.mark.parametrize("method,type_name", [("gdt", "argparse.Namespace"), ("tclr", "GradScaler")])
def test_pickled_objects_need_trust(tmp_path, method, type_name, capsys):
    src = tmp_path / "x.pth"
    expected = write_synthetic_checkpoint(method, src)
    assert severe_main(["convert", "--method", method, str(src), str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert type_name in err and "--trust" in err and str(src) in err
    assert len(err.strip().splitlines()) == 1
    assert_exact(convert_file(src, method, trust=True).state_dict, expected)


def test_detect_cli_prints_method_first(tmp_path, capsys):
    src = tmp_path / "rspnet" / "snellius_checkpoint_epoch_200.pth.tar"
    write_synthetic_checkpoint("rspnet", src)
    assert severe_main(["convert", "--detect", str(src)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "rspnet"


def test_load_weights_converts_raw_files_on_the_fly(tmp_path):
    src = tmp_path / "pcl.pt"
    expected = write_synthetic_checkpoint("pretext_contrast", src, seed=9)
    w = load_weights(src)  # auto-detected
    assert w.meta["method"] == "pretext_contrast"
    assert_exact(w.state_dict, expected)
    out = tmp_path / "conv.pth"
    save_converted(w, out)
    with pytest.raises(SevereError, match="converted from a 'pretext_contrast' checkpoint, not 'moco'"):
        load_weights(out, method="moco")


def test_strict_load_rejects_wrong_architecture():
    obj, expected = synthetic_checkpoint("tclr")
    backbone = build_backbone("r2plus1d_18")
    from severe.models import load_backbone_state
    with pytest.raises(SevereError, match="do not fit architecture r2plus1d_18"):
        load_backbone_state(backbone, expected)


@pytest.mark.parametrize("content,words", [
    (b"", "empty"),
    (b"this is not a checkpoint", "not a PyTorch checkpoint (starts with"),
])
def test_bad_files(tmp_path, capsys, content, words):
    f = tmp_path / "bad.pth"
    f.write_bytes(content)
    assert severe_main(["convert", "--method", "moco", str(f), str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert words in err and str(f) in err and "Traceback" not in err


def test_truncated_file_and_missing_file(tmp_path, capsys):
    src = tmp_path / "moco.pth"
    write_synthetic_checkpoint("moco", src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    assert severe_main(["convert", "--method", "moco", str(src), str(tmp_path / "o.pth")]) == 2
    assert "truncated" in capsys.readouterr().err
    assert severe_main(["convert", "--detect", str(tmp_path / "nope.pth")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()


def test_convert_all_in_checkpoints_folder(tmp_path, capsys):
    root = tmp_path / "checkpoints_pretraining"
    exp = {m: write_synthetic_checkpoint(m, root / METHODS[m].expected_file, seed=i, dtype=torch.float16)
           for i, m in enumerate(["ctp", "video_moco", "gdt"])}
    out = tmp_path / "converted"
    assert severe_main(["convert", "--all", str(root), str(out), "--trust"]) == 0
    for m, expected in exp.items():
        saved = torch.load(out / f"{m}.pth", weights_only=True)
        assert saved["meta"]["method"] == m
        assert_exact(saved["state_dict"], expected)
    assert "not present" in capsys.readouterr().out


def test_user_errors_exit_cleanly_in_a_real_process(tmp_path):
    """The console script path: non-zero exit, one line on stderr, no traceback."""
    src = tmp_path / "gdt.pth"
    write_synthetic_checkpoint("gdt", src, dtype=torch.float16)
    for args in (["--method", "gdt", str(src), str(tmp_path / "o.pth")],           # pickled args, no --trust
                 ["--method", "selavi", str(src), str(tmp_path / "o.pth"), "--trust"],  # wrong method
                 ["--method", "nosuch", str(src), str(tmp_path / "o.pth")]):      # unknown method (argparse)
        r = subprocess.run([sys.executable, "-m", "severe.cli", "convert", *args], capture_output=True, text=True)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr and r.stderr.strip()
