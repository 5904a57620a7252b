"""MODEL.NUM_CLASSES: a classifier over a label space other than the dataset's official one (the demo's source
domain is written in the Kinetics-400 layout with 5 classes)."""

import json

import pytest
import torch

from severe.cli import main as severe_main

TINY = ["MODEL.ARCH", "r2plus1d_18_w8", "TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "8", "DATA.NUM_FRAMES", "8",
        "DATA.CROP", "32", "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1",
        "DATA.TEST_CLIPS", "1", "TEST.BATCH_SIZE", "10", "TRAIN.MILESTONES", "[]"]


def _run(root, out, *overrides):
    return severe_main(["run", "recognition", "domain/ucf101", "--init", "scratch", "--data-root", str(root),
                        "--out", str(out), "--no-progress", *TINY, *overrides])


def test_num_classes_sets_the_classifier_size(synthetic_root, tmp_path):
    assert _run(synthetic_root, tmp_path / "run", "MODEL.NUM_CLASSES", "7") == 0  # the synthetic UCF101 has labels 0-4
    state = torch.load(tmp_path / "run" / "checkpoint_last.pt", map_location="cpu", weights_only=True)["model"]
    heads = {k: tuple(v.shape) for k, v in state.items() if not k.startswith("backbone.")}
    assert heads == {"head.weight": (7, 64), "head.bias": (7,)}
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["MODEL"]["NUM_CLASSES"] == 7


@pytest.mark.parametrize("value, message", [
    ("3", "MODEL.NUM_CLASSES 3: the ucf101 train list has label 3"),
    ("-1", "MODEL.NUM_CLASSES must be >= 0"),
])
def test_a_label_space_too_small_is_one_line_before_anything_is_written(synthetic_root, tmp_path, capsys, value, message):
    out = tmp_path / "run"
    assert _run(synthetic_root, out, "MODEL.NUM_CLASSES", value) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (out / "checkpoint_last.pt").exists() and not (out / "results.json").exists()
