"""Tubelet-Contrast's R3D-18, I3D and mini-Kinetics releases end to end: synthetic files converted exactly by
``severe convert`` (one file, ``--detect``, ``--all``), one-line refusals, the pretraining dataset in meta, the
I3D recipe rules, and converted I3D weights driving the registered backbone."""

from __future__ import annotations

import pytest
import torch

from severe.checkpoints import METHODS, build_initialised_backbone, load_weights
from severe.checkpoints.convert import convert_object
from severe.checkpoints.tc_layouts import tc_i3d_checkpoint, tc_r3d_checkpoint
from severe.cli import main as severe_main
from severe.errors import SevereError
from severe.models import check_backbone_contract
from severe.models.i3d import I3D
from severe.recognition.config import flatten_settings, init_overrides, recognition_defaults, validate
from severe.synth.checkpoints import synthetic_checkpoint, write_synthetic_checkpoint

NEW = {"tubelet_contrast_r3d": ("r3d_18", 120), "tubelet_contrast_i3d": ("i3d", 342)}
MINI = "tubelet_contrast/mini-kinetics/r2+1d/epoch_100.pth"


def assert_exact(state: dict, expected: dict) -> None:
    assert list(state) == list(expected)
    for k, v in expected.items():
        assert state[k].dtype == v.dtype and torch.equal(state[k], v), k


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A checkpoints_pretraining folder with the four Tubelet-Contrast files (float16), and their expected states."""
    root = tmp_path_factory.mktemp("tc") / "checkpoints_pretraining"
    expected = {}
    for i, method in enumerate(["tubelet_contrast", "tubelet_contrast_r3d", "tubelet_contrast_i3d"]):
        expected[method] = write_synthetic_checkpoint(method, root / METHODS[method].expected_file, seed=20 + i,
                                                      dtype=torch.float16)
    expected["mini"] = write_synthetic_checkpoint("tubelet_contrast", root / MINI, seed=30, dtype=torch.float16)
    return root, expected


def test_the_rows_write_the_tc_layouts_files():
    """The table's synthetic writer and severe.checkpoints.tc_layouts give the same object and state."""
    for method, make in (("tubelet_contrast_r3d", tc_r3d_checkpoint), ("tubelet_contrast_i3d", tc_i3d_checkpoint)):
        obj, expected = synthetic_checkpoint(method, seed=4)
        ref_obj, ref_expected = make(seed=4)
        assert_exact(expected, ref_expected)
        assert list(obj["state_dict"]) == list(ref_obj["state_dict"])
        assert all(torch.equal(v, ref_obj["state_dict"][k]) for k, v in obj["state_dict"].items())
        assert obj["meta"] == ref_obj["meta"] and set(obj) == {"meta", "state_dict", "optimizer"}


@pytest.mark.parametrize("method", list(NEW))
def test_convert_and_detect_through_the_cli(release, method, tmp_path, capsys):
    root, expected = release
    src = root / METHODS[method].expected_file
    assert severe_main(["convert", "--detect", str(src)]) == 0
    assert capsys.readouterr().out.strip() == method
    out = tmp_path / f"{method}.pth"
    assert severe_main(["convert", "--method", method, str(src), str(out)]) == 0
    arch, n = NEW[method]
    assert f"method {method}, arch {arch}, pretrained on kinetics-400, {n} tensors" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    assert_exact(saved["state_dict"], expected[method])
    meta = saved["meta"]
    assert (meta["method"], meta["arch"], meta["source_prefix"]) == (method, arch, "backbone.")
    assert (meta["pretraining_data"], meta["pretraining_data_from"]) == ("kinetics-400", "path")
    assert set(meta["dropped"]) == {"key_encoder", "fc", "key_fc", "queue", "queue_ptr", "meta", "optimizer"}
    assert meta.get("bn_eps_pretraining") == (0.001 if method == "tubelet_contrast_r3d" else None)


def test_refusals_are_one_line(release, tmp_path, capsys):
    root, _ = release
    r3d = root / METHODS["tubelet_contrast_r3d"].expected_file
    i3d = root / METHODS["tubelet_contrast_i3d"].expected_file
    r2p1d = root / METHODS["tubelet_contrast"].expected_file
    cases = [(r3d, "tubelet_contrast_i3d", "tubelet_contrast_r3d"), (i3d, "tubelet_contrast_r3d", "tubelet_contrast_i3d"),
             (i3d, "tubelet_contrast", "tubelet_contrast_i3d"), (r2p1d, "tubelet_contrast_r3d", "tubelet_contrast"),
             (r3d, "ctp", "tubelet_contrast_r3d")]
    for src, method, looks in cases:
        assert severe_main(["convert", "--method", method, str(src), str(tmp_path / "o.pth")]) == 2
        err = capsys.readouterr().err
        assert f"does not have the {method} layout; it looks like a '{looks}' checkpoint" in err, (src, method)
        assert err.count("\n") == 1
    assert not (tmp_path / "o.pth").exists()


def test_a_damaged_i3d_file_is_refused_with_the_missing_key():
    obj, _ = synthetic_checkpoint("tubelet_contrast_i3d", seed=1, dtype=torch.float16)
    del obj["state_dict"]["backbone.mixed_5c.branch_2.1.conv3d.weight"]
    with pytest.raises(SevereError, match=r"does not give an exact i3d: 1 missing keys \(e\.g\. "
                                          r"mixed_5c\.branch_2\.1\.conv3d\.weight\)"):
        convert_object(obj, "tubelet_contrast_i3d")
    obj, _ = synthetic_checkpoint("tubelet_contrast_i3d", seed=1, dtype=torch.float16)
    key = "backbone.conv3d_1a_7x7.conv3d.weight"
    obj["state_dict"][key] = obj["state_dict"][key][:, :, :3]
    with pytest.raises(SevereError, match=r"'conv3d_1a_7x7\.conv3d\.weight' has shape \(64, 3, 3, 7, 7\), expected "
                                          r"\(64, 3, 7, 7, 7\) for i3d"):
        convert_object(obj, "tubelet_contrast_i3d")


def test_convert_all_picks_up_every_tubelet_contrast_file(release, tmp_path, capsys):
    root, expected = release
    out = tmp_path / "converted"
    assert severe_main(["convert", "--all", str(root), str(out)]) == 0
    printed = capsys.readouterr().out
    for stem, key, data in (("tubelet_contrast", "tubelet_contrast", "kinetics-400"),
                            ("tubelet_contrast_mini-kinetics", "mini", "mini-kinetics"),
                            ("tubelet_contrast_r3d", "tubelet_contrast_r3d", "kinetics-400"),
                            ("tubelet_contrast_i3d", "tubelet_contrast_i3d", "kinetics-400")):
        assert f"ok -> {out / (stem + '.pth')}" in printed
        saved = torch.load(out / f"{stem}.pth", weights_only=True)
        assert_exact(saved["state_dict"], expected[key])
        assert saved["meta"]["pretraining_data"] == data
        assert saved["meta"]["method"] == ("tubelet_contrast" if key == "mini" else key)
    assert "gdt" in printed and "not present" in printed


def test_pretraining_data_from_the_option_and_its_refusals(release, tmp_path, capsys):
    root, expected = release
    moved = tmp_path / "tc_mini.pth"
    moved.write_bytes((root / MINI).read_bytes())
    out = tmp_path / "o.pth"
    assert severe_main(["convert", "--method", "tubelet_contrast", str(moved), str(out),
                        "--pretraining-data", "mini-kinetics"]) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert (meta["pretraining_data"], meta["pretraining_data_from"]) == ("mini-kinetics", "option")
    assert "pretrained on mini-kinetics" in capsys.readouterr().out
    # without the option, a file outside the release layout is recorded as the main release, and says so
    weights = load_weights(moved, "tubelet_contrast")
    assert (weights.meta["pretraining_data"], weights.meta["pretraining_data_from"]) == ("kinetics-400", "default")
    assert load_weights(root / MINI).meta["pretraining_data"] == "mini-kinetics"  # raw file, detected on the fly
    refusals = [
        (["--method", "tubelet_contrast", str(root / MINI), str(out), "--pretraining-data", "kinetics-400"],
         "--pretraining-data kinetics-400 contradicts the path"),
        (["--method", "tubelet_contrast_r3d", str(root / METHODS["tubelet_contrast_r3d"].expected_file), str(out),
          "--pretraining-data", "mini-kinetics"], "--pretraining-data mini-kinetics is not a tubelet_contrast_r3d release"),
        (["--method", "ctp", str(moved), str(out), "--pretraining-data", "mini-kinetics"],
         "method ctp records no pretraining dataset"),
    ]
    for argv, words in refusals:
        assert severe_main(["convert", *argv]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, argv
    with pytest.raises(SystemExit):
        severe_main(["convert", "--detect", str(moved), "--pretraining-data", "mini-kinetics"])


def test_the_i3d_recipe_rules():
    """The original's I3D finetuning configs: literal settings, only where they existed."""
    recipe = ["DATA.CROP", "224", "DATA.TEST_RESIZE", "256", "TRAIN.EPOCHS", "17", "TRAIN.MILESTONES", "[6, 12, 15]",
              "TRAIN.WEIGHT_DECAY", "0.0001", "MODEL.DROPOUT", "0.5"]
    for dataset in ("ucf101", "hmdb51", "diving48"):
        assert flatten_settings(init_overrides("tubelet_contrast_i3d", dataset, "finetune", 0)) == recipe
    for args in (("gym99", "finetune", 0), ("ssv2", "finetune", 0), ("ucf101", "linear", 0), ("ucf101", "knn", 0),
                 ("ucf101", "finetune", 1000)):
        assert init_overrides("tubelet_contrast_i3d", *args) == [], args
    assert init_overrides("tubelet_contrast_r3d", "ucf101", "finetune", 0) == []  # R3D-18: the default rows
    cfg = recognition_defaults()
    cfg.merge_from_list(["EXPERIMENT.ID", "hmdb51", "DATA.DATASET", "hmdb51"])
    cfg.merge_from_list(flatten_settings(init_overrides("tubelet_contrast_i3d", "hmdb51", "finetune", 0)))
    validate(cfg)
    assert (cfg.DATA.CROP, cfg.DATA.TEST_RESIZE, cfg.TRAIN.EPOCHS, list(cfg.TRAIN.MILESTONES)) == (224, 256, 17, [6, 12, 15])
    assert (cfg.TRAIN.WEIGHT_DECAY, cfg.MODEL.DROPOUT) == (1e-4, 0.5)
    assert (cfg.TRAIN.LR, cfg.TRAIN.GAMMA, cfg.TRAIN.OPTIMIZER, cfg.DATA.NUM_FRAMES) == (1e-4, 0.3, "adam", 32)


def test_converted_i3d_weights_drive_the_registered_backbone(release, tmp_path):
    root, expected = release
    out = tmp_path / "i3d.pth"
    assert severe_main(["convert", "--method", "tubelet_contrast_i3d",
                        str(root / METHODS["tubelet_contrast_i3d"].expected_file), str(out)]) == 0
    weights = load_weights(out, "tubelet_contrast_i3d")
    assert weights.meta["arch"] == "i3d"
    torch.manual_seed(0)
    backbone = build_initialised_backbone(weights).eval()
    assert backbone.arch == "i3d" and backbone.feature_dim == 1024 and backbone.spec.spatial_stride == 32
    state = backbone.state_dict()
    assert all(torch.equal(state[k], v.float()) if v.is_floating_point() else torch.equal(state[k], v)
               for k, v in expected["tubelet_contrast_i3d"].items())
    reference = I3D().eval()
    reference.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in expected["tubelet_contrast_i3d"].items()})
    clip = torch.randn(2, 3, 8, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        pooled, fmap = backbone(clip), backbone.forward_features(clip)
        torch.testing.assert_close(pooled, reference(clip))
    assert tuple(pooled.shape) == (2, 1024) and tuple(fmap.shape) == (2, 1024, 1, 2, 2)
    torch.testing.assert_close(pooled, fmap.mean(dim=(2, 3, 4)))
    assert tuple(map(tuple, check_backbone_contract(backbone, 8, 64))) == ((1, 1024), (1, 1024, 1, 2, 2))
    with pytest.raises(SevereError, match="converted from a 'tubelet_contrast_i3d' checkpoint, not 'tubelet_contrast_r3d'"):
        load_weights(out, "tubelet_contrast_r3d")
