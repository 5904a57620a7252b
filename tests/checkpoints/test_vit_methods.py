"""The ViT rows of the method table: synthetic files in each published layout (tiny twins) converted through
``severe convert`` and compared tensor by tensor, ``--detect`` on each, safetensors and transformers naming,
the converted file's metadata, loading it as a backbone, and one-line refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from severe.checkpoints import METHODS, build_initialised_backbone, convert_object, detect_method, load_weights
from severe.checkpoints.methods import DETECTION_ORDER, INIT_ORDER
from severe.checkpoints.vit_methods import CLIP_NORM, POOLED, SVT_NORM, VIT_METHOD_ROWS, ViTMethodSpec
from severe.cli import main as severe_main
from severe.errors import SevereError
from severe.models import backbone_key_shapes
from severe.synth.checkpoints import synthetic_checkpoint

IMAGENET_MEAN = [0.485, 0.456, 0.406]
VIT = [m.name for m in VIT_METHOD_ROWS]

# (method, variant, detected as, needs --trust, dropped groups that must be recorded)
CASES = [
    ("videomae", None, "videomae", True, {"decoder", "encoder.norm", "encoder_to_decoder", "mask_token", "args"}),
    ("videomae", "finetuned", "supervised_vit", False, {"head"}),
    ("videomae", "hf", "videomae", False, {"decoder", "videomae.layernorm", "encoder_to_decoder", "mask_token"}),
    ("supervised_vit", None, "supervised_vit", True, {"head", "optimizer"}),
    ("supervised_vit", "hf", "supervised_vit", False, {"classifier"}),
    ("everest", None, "everest", True, {"decoder", "encoder.norm"}),
    ("sigma", None, "sigma", True, {"prototypes", "head", "decoder", "encoder.norm"}),
    ("mgmae", None, "mgmae", True, {"decoder", "encoder.norm"}),
    ("mme", None, "mme", True, {"encoder.model.norm", "decoder"}),
    ("mme", "momentum", "mme", True, {"encoder_q.encoder.model.norm", "decoder"}),
    ("mvd", None, "mvd", True, {"pos_embed", "decoder_img", "decoder_vid", "down_img", "mask_token_vid", "norm"}),
    ("umt", None, "umt", True, {"clip_decoder", "encoder.norm"}),
    ("umt", "video_text", "umt", True, {"clip_teacher", "text_encoder", "vision_proj", "itm_head", "temp",
                                        "vision_encoder.clip_decoder", "config"}),
    ("viclip", None, "viclip", False, {"vision_encoder.proj", "text_encoder", "temp"}),
    ("clip", None, "clip", False, {"visual.proj", "transformer", "token_embedding"}),
    ("svt", None, "svt", True, {"head", "student", "args", "dino_loss"}),
    ("svt", "bare_teacher", "svt", False, {"head"}),
    ("svt", "hf", "svt", False, {"classifier"}),
]
ids = [f"{m}-{v}" for m, v, *_ in CASES]


def assert_exact(state: dict, expected: dict) -> None:
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key


def write(obj, path) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    else:
        torch.save(obj, path)


@pytest.mark.parametrize("method,variant,detected,trust,dropped", CASES, ids=ids)
def test_convert_cli_exact_detect_and_load(tmp_path, capsys, method, variant, detected, trust, dropped):
    obj, expected = synthetic_checkpoint(method, seed=4, variant=variant)
    src = tmp_path / ("model.safetensors" if variant == "hf" else f"{method}.pth")
    write(obj, src)
    extra = ["--trust"] if trust else []
    if trust:  # the pickled args / config object is refused without --trust, in one line naming it
        assert severe_main(["convert", "--method", method, str(src), str(tmp_path / "x.pth")]) == 2
        err = capsys.readouterr().err.strip()
        assert "--trust" in err and len(err.splitlines()) == 1
    assert severe_main(["convert", "--detect", str(src), *extra]) == 0
    assert capsys.readouterr().out.strip() == detected
    out = tmp_path / "out.pth"
    assert severe_main(["convert", "--method", method, str(src), str(out), *extra]) == 0
    assert f"method {method}" in capsys.readouterr().out

    saved = torch.load(out, weights_only=True)
    assert set(saved) == {"state_dict", "meta"}
    assert_exact(saved["state_dict"], expected)
    meta = saved["meta"]
    spec = METHODS[method]
    assert meta["method"] == method and meta["arch"] == spec.synthetic_arch
    family = "clip" if method in ("clip", "viclip") else "timesformer" if method == "svt" else "videomae"
    assert meta["pooled"] == (spec.pooled or POOLED[family])
    assert meta["normalize"] == {"svt": SVT_NORM, "clip": CLIP_NORM, "viclip": CLIP_NORM}.get(
        method, {"mean": IMAGENET_MEAN, "std": [0.229, 0.224, 0.225]})
    assert dropped <= set(meta["dropped"]), meta["dropped"]
    assert set(meta["fresh"]) <= set(expected)
    for key, how in meta["fresh"].items():  # initialised, not taken from the file
        assert torch.equal(expected[key], torch.ones_like(expected[key]) if how == "ones" else torch.zeros_like(expected[key]))

    weights = load_weights(out)
    backbone = build_initialised_backbone(weights)
    assert backbone.arch == spec.synthetic_arch
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, expected[key].to(value.dtype)), key
    frames = 2 * backbone.spec.temporal_stride
    with torch.no_grad():
        assert backbone.eval()(torch.randn(1, 3, frames, 32, 32)).shape == (1, 64)


def test_pretraining_files_start_fc_norm_fresh_and_record_encoder_norm():
    obj, expected = synthetic_checkpoint("videomae", seed=1)
    converted = convert_object(obj, "videomae")
    assert torch.equal(converted.state_dict["fc_norm.weight"], torch.ones(64))
    assert torch.equal(converted.state_dict["fc_norm.bias"], torch.zeros(64))
    assert converted.meta["fresh"] == {"fc_norm.weight": "ones", "fc_norm.bias": "zeros"}
    assert converted.meta["dropped"]["encoder.norm"] == 2
    # a finetuned file keeps its fc_norm
    obj, expected = synthetic_checkpoint("videomae", seed=1, variant="finetuned")
    converted = convert_object(obj, "videomae")
    assert torch.equal(converted.state_dict["fc_norm.weight"], expected["fc_norm.weight"])
    assert converted.meta["fresh"] == {}


def test_mvd_uses_its_saved_table_and_refuses_another():
    obj, _ = synthetic_checkpoint("mvd", seed=2)
    convert_object(obj, "mvd")
    obj["model"]["pos_embed"] = obj["model"]["pos_embed"] + 1e-3  # learned / interpolated: not the 3-D sin-cos table
    with pytest.raises(SevereError, match="differs from the sincos_3d table") as err:
        convert_object(obj, "mvd")
    assert "\n" not in str(err.value)


def test_full_size_files_give_the_vit_b_arch():
    shapes = backbone_key_shapes("vit_b_videomae")
    model = {f"encoder.{k}": torch.empty(s) for k, s in shapes.items() if not k.startswith("fc_norm.")}
    converted = convert_object({"model": model}, "videomae")
    assert converted.meta["arch"] == "vit_b_videomae" and len(converted.state_dict) == len(shapes)


def test_detection_order_and_rows():
    assert DETECTION_ORDER[-10:] == ["svt", "umt", "viclip", "clip", "mme", "mgmae", "mvd", "sigma", "videomae",
                                     "supervised_vit"]
    assert INIT_ORDER[-len(VIT):] == tuple(VIT)
    assert all(isinstance(METHODS[m], ViTMethodSpec) and METHODS[m].synthetic is not None for m in VIT)
    assert METHODS["everest"].detect is None and "videomae" in METHODS["everest"].also_accepts
    obj, _ = synthetic_checkpoint("everest")
    assert detect_method(obj, file_name="ckpt/" + METHODS["everest"].expected_file) == "everest"
    assert detect_method(obj, file_name="ckpt/videomae/checkpoint.pth") == "videomae"


@pytest.mark.parametrize("cnn", ["ctp", "gdt", "supervised", "tclr", "moco"])
def test_cnn_files_are_never_vit_and_vice_versa(cnn):
    obj, _ = synthetic_checkpoint(cnn)
    with pytest.raises(SevereError, match=rf"does not have the videomae layout.*looks like a '{cnn}'") as err:
        convert_object(obj, "videomae")
    assert "\n" not in str(err.value)
    vit, _ = synthetic_checkpoint("videomae", variant="finetuned")
    with pytest.raises(SevereError, match="looks like a 'supervised_vit'"):
        convert_object(vit, cnn if cnn != "gdt" else "selavi")


@pytest.mark.parametrize("edit,words", [
    (lambda m: m.pop("encoder.blocks.1.mlp.fc2.bias"), r"1 missing \(e.g. blocks.1.mlp.fc2.bias\)"),
    (lambda m: m.__setitem__("encoder.blocks.0.attn.proj.weight", torch.zeros(64, 32)),
     r"'blocks.0.attn.proj.weight' has shape"),
    (lambda m: m.__setitem__("encoder.blocks.0.gamma_1", torch.ones(64)), "layer scale"),
    (lambda m: m.__setitem__("encoder.blocks.0.attn.extra", torch.ones(64)), "unexpected"),
])
def test_missing_wrong_shape_and_unrepresentable_keys_are_one_line(edit, words):
    obj, _ = synthetic_checkpoint("videomae")
    edit(obj["model"])
    with pytest.raises(SevereError, match=words) as err:
        convert_object(obj, "videomae", source="videomae.pth")
    assert "\n" not in str(err.value) and str(err.value).startswith("videomae.pth")


def test_svt_takes_the_teacher_and_refuses_a_student_only_file():
    obj, expected = synthetic_checkpoint("svt", seed=6)
    state = convert_object(obj, "svt").state_dict
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    student = {k[len("module.backbone."):]: v for k, v in obj["student"].items() if k.startswith("module.backbone.")}
    assert not torch.equal(state["pos_embed"], student["pos_embed"])  # the student has other values
    obj, _ = synthetic_checkpoint("svt", variant="student_only")
    with pytest.raises(SevereError, match="'student' but no 'teacher'") as err:
        convert_object(obj, "svt")
    assert "\n" not in str(err.value)
    with pytest.raises(SevereError, match="student weights"):
        convert_object(obj["student"], "svt")  # the bare DDP student dict


def test_vit_file_as_another_vit_method_names_the_real_one():
    obj, _ = synthetic_checkpoint("svt", variant="bare_teacher")
    with pytest.raises(SevereError, match="looks like a 'svt' checkpoint") as err:
        convert_object(obj, "videomae")
    assert "\n" not in str(err.value)
    obj, _ = synthetic_checkpoint("videomae", variant="hf")
    with pytest.raises(SevereError, match="transformers naming, which mvd files do not use"):
        convert_object(obj, "mvd")


def test_refusals_in_a_real_process(tmp_path):
    src = tmp_path / "student.pth"
    torch.save(synthetic_checkpoint("svt", variant="student_only")[0], src)
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{notjson")
    for args, words in ((["--method", "svt", str(src), str(tmp_path / "o.pth"), "--trust"], "no 'teacher'"),
                        (["--detect", str(bad)], "not a readable safetensors file")):
        r = subprocess.run([sys.executable, "-m", "severe.cli", "convert", *args], capture_output=True, text=True)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.pth").exists()


@pytest.mark.parametrize("method,variant", [("videomae", "finetuned"), ("umt", "video_text"), ("mvd", None)])
def test_pooled_feature_is_fc_norm_of_the_token_mean(method, variant):
    obj, _ = synthetic_checkpoint(method, seed=2, variant=variant)
    backbone = build_initialised_backbone(convert_object(obj, method)).eval()
    x = torch.randn(1, 3, 2 * backbone.spec.temporal_stride, 32, 32)
    with torch.no_grad():
        tokens, pooled = backbone.forward_features(x), backbone(x)
    sd = backbone.state_dict()
    expected = torch.nn.functional.layer_norm(tokens.flatten(2).mean(-1), (64,), sd["fc_norm.weight"],
                                              sd["fc_norm.bias"], 1e-6)
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_raw_safetensors_file_is_detected_and_converted_on_the_fly(tmp_path):
    from safetensors.torch import save_file

    obj, expected = synthetic_checkpoint("svt", seed=8, variant="hf")
    src = tmp_path / "timesformer.safetensors"
    save_file(obj, str(src))
    weights = load_weights(src)
    assert weights.meta["method"] == "svt" and weights.meta["source_layout"] == "hf_timesformer"
    assert_exact(weights.state_dict, expected)
