"""AVA with a ViT (docs/protocol.md §15): whole test frames whose sides are not multiples of the patch size are
resized to the nearest multiples, the boxes scaled by the same factors; a tiny ViT runs end to end."""

from __future__ import annotations

import json

import numpy as np
from severe.cli import main as severe_main
from severe.data.spatial import SpatialPlan, resize_plan
from severe.detection.data import fit_to_multiple, size_multiple
from tests.helpers import SLOWFAST_CONFIGS


def test_fit_to_multiple_scales_boxes_per_axis():
    plan = resize_plan(90, 160, 40)  # short side 40 -> 40 x 71
    assert (plan.height, plan.width) == (40, 71)
    fitted = fit_to_multiple(plan, 16)
    assert (fitted.height, fitted.width) == (32, 64)  # nearest multiples of 16 (40/16 = 2.5 rounds to even)
    boxes = np.array([[0.0, 0.0, 160.0, 90.0], [16.0, 9.0, 80.0, 45.0]])
    np.testing.assert_allclose(fitted.boxes(boxes, 90, 160), [[0, 0, 64, 32], [6.4, 3.2, 32, 16]])
    assert fit_to_multiple(plan, 1) is plan and fit_to_multiple(SpatialPlan(40, 71, (0, 0, 32)), 16).crop == (0, 0, 32)
    assert (size_multiple("vit_tiny_videomae"), size_multiple("vit_tiny_timesformer"), size_multiple("r2plus1d_18")) == (16, 16, 1)


def test_tiny_vit_ava_at_a_size_not_multiple_of_16(synthetic_root, tmp_path):
    out = tmp_path / "run"
    argv = ["run", "ava", str(SLOWFAST_CONFIGS / "AVA" / "TINY_SYNTHETIC.yaml"), "--init", "scratch", "--data-root",
            str(synthetic_root), "--out", str(out), "--no-progress", "MODEL.ARCH", "vit_tiny_videomae", "SEED", "0",
            "TRAIN.EPOCHS", "1", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TRAIN_JITTER_SCALES",
            "[32, 40]", "DATA.TEST_CROP_SIZE", "40"]
    assert severe_main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert 0.0 <= res["metrics"]["mAP"] <= 1.0 and res["data"]["test"]["boxes"] > 0
    assert any("multiple of the ViT patch size (16)" in d for d in res["deviations"])


def test_vit_ava_train_crop_must_be_a_multiple(synthetic_root, tmp_path, capsys):
    argv = ["run", "ava", str(SLOWFAST_CONFIGS / "AVA" / "TINY_SYNTHETIC.yaml"), "--init", "scratch", "--data-root",
            str(synthetic_root), "--out", str(tmp_path / "run"), "--no-progress", "MODEL.ARCH", "vit_tiny_videomae",
            "TRAIN.EPOCHS", "1", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "40", "DATA.TRAIN_JITTER_SCALES", "[40, 48]"]
    assert severe_main(argv) != 0
    assert "DATA.TRAIN_CROP_SIZE 40 is not a multiple of the backbone's patch size 16" in capsys.readouterr().err
