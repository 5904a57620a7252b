"""AVA v2.2 detection (docs/tasks.md §1) on synthetic data: configs, keyframes, clip sampling, box transforms,
RoIAlign geometry, TCLR pooling, an end-to-end run with re-test, a learning step, and config errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from severe.cli import run_entry
from severe.data.readers.ava import AvaBox
from severe.data.transforms import Normalization
from severe.detection.cli import main as ava_main
from severe.detection.data import AvaDataset, collate_train, keyframe_positions, load_ava_split, merge_keyframes, multi_hot
from severe.data.frames import FrameVideos
from severe.detection.model import RoIHead, build_detection_model
from severe.data.spatial import (
    SpatialPlan,
    boxes_to_pixels,
    crop_boxes,
    flip_boxes,
    short_side_size,
    train_plan,
)
from severe.errors import SevereError
from severe.metrics.ava import frame_map, read_boxes_csv, read_exclusions, read_labelmap
from severe.models import build_backbone
from severe.tasks import TASKS, lifecycle
from severe.tasks.ava import detection_step
from severe.tasks.slowfast import run_net_main
from tests.helpers import SLOWFAST_CONFIGS, sgd_losses

CONFIGS = SLOWFAST_CONFIGS
AVA_CFG = CONFIGS / "AVA" / "R2PLUS1D_18_32x2_112.yaml"
TINY_CFG = CONFIGS / "AVA" / "TINY_SYNTHETIC.yaml"


@pytest.fixture
def data_root(synthetic_root) -> Path:
    return synthetic_root


# ------------------------------------------------------------------------------------------- configs

def test_shipped_config_has_the_protocol_settings():
    cfg = lifecycle.load_task_config(TASKS["ava"], AVA_CFG)  # PySlowFast names in the file, read as common names
    assert (cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.EPOCHS, cfg.TRAIN.LR) == (32, 20, 0.1)
    assert list(cfg.SOLVER.STEPS) == [0, 10, 15, 20] and list(cfg.SOLVER.LRS)[:3] == [1.0, 0.1, 0.01]
    assert (cfg.TRAIN.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY, cfg.TRAIN.NESTEROV) == (1e-7, 0.0, True)
    assert (cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.WARMUP_START_LR) == (5.0, 0.000125)
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TEST_CROP_SIZE) == (32, 2, 112)
    assert (cfg.DETECTION.ROI_XFORM_RESOLUTION, cfg.DETECTION.SPATIAL_SCALE_FACTOR) == (7, 0)  # 0: from the backbone
    assert cfg.AVA.DETECTION_SCORE_THRESH == 0.9 and cfg.SEED == 0
    from severe.tasks.slowfast import solver_from_config

    spec, schedule = solver_from_config(cfg)
    assert (spec.kind, spec.weight_decay, spec.bn_weight_decay, spec.nesterov) == ("sgd", 1e-7, 0.0, True)
    assert schedule.lr_at(0.0) == pytest.approx(0.000125)
    assert schedule.lr_at(2.5) == pytest.approx(0.000125 + 2.5 * (0.1 - 0.000125) / 5)
    assert (schedule.lr_at(12.0), schedule.lr_at(19.9)) == (pytest.approx(0.01), pytest.approx(0.001))


# ------------------------------------------------------------------------------------------- samples

def test_keyframes_merge_duplicate_boxes_and_ignore_negatives():
    b1, b2 = (0.1, 0.2, 0.5, 0.9), (0.6, 0.1, 0.9, 0.8)
    rows = [
        AvaBox("vB", 903, b1, 12, person_id=0), AvaBox("vB", 903, b1, 80, person_id=0),  # ground truth
        AvaBox("vA", 905, b2, 14, person_id=1),
        AvaBox("vB", 903, b1, 12, score=0.95),  # detector box with the same coordinates: merged
        AvaBox("vB", 903, b2, -1, score=0.97),  # negative: a box without classes
        AvaBox("vB", 902, b2, None, score=0.91),
    ]
    kfs = merge_keyframes(rows, ["vA", "vB"])  # frame-list order: vA first
    assert [(k.video_id, k.second) for k in kfs] == [("vA", 905), ("vB", 902), ("vB", 903)]
    k = kfs[2]
    np.testing.assert_array_equal(k.boxes, np.array([b1, b2]))
    assert k.labels == ((12, 80), ())
    targets = multi_hot(k.labels, 80)
    assert targets.shape == (2, 80) and targets[0].nonzero()[0].tolist() == [11, 79] and targets[1].sum() == 0
    with pytest.raises(SevereError, match="not in the frame lists"):
        merge_keyframes(rows, ["vA"])
    with pytest.raises(SevereError, match="outside AVA's keyframes"):
        merge_keyframes([AvaBox("vA", 901, b1, 1, person_id=0)], ["vA"])


def test_keyframe_clip_positions():
    # s = 902 -> c = 60; 32 frames at stride 2 from c - 32
    assert keyframe_positions(902, 27030, 32, 2) == list(range(28, 92, 2))
    # clamped to the video (180 frames): s = 905 -> c = 150, positions 118 .. 180 -> last one 179
    pos = keyframe_positions(905, 180, 32, 2)
    assert pos[0] == 118 and pos[-1] == 179 and pos[-2] == 178
    assert keyframe_positions(902, 180, 8, 20) == [0, 0, 20, 40, 60, 80, 100, 120]  # from 60 - 80 = -20


def test_split_and_dataset_items(data_root):
    ava = data_root / "ava"
    split = load_ava_split(ava, frame_lists=["train.csv"], gt_files=["ava_train_v2.2.csv"],
                           detection_files=["person_box_67091280_iou90/ava_detection_train_boxes_and_labels_include_negative_v2.2.csv"],
                           score_threshold=0.9)
    assert len(split.keyframes) == 9  # 3 videos x 3 keyframes (the excluded one keeps its detector boxes)
    assert all(len(k.boxes) in (3, 6) for k in split.keyframes)  # ground truth + jittered detector boxes
    frames = FrameVideos(ava / "frames", split.videos.values(), 30.0, "{name}_{index:06d}.jpg")
    norm = Normalization(None, None, "RGB")
    train = AvaDataset(split.keyframes, frames, train=True, num_frames=4, sampling_rate=2, norm=norm, seed=3,
                       num_classes=80, crop_size=32, jitter=(32, 48), inverse_jitter=True)
    clip, boxes, targets, idx = train[4]
    assert clip.shape == (3, 4, 32, 32) and idx == 4
    assert boxes.shape == (len(split.keyframes[4].boxes), 4) and targets.shape == (len(boxes), 80)
    assert (boxes >= 0).all() and (boxes <= 32).all() and (boxes[:, 2] >= boxes[:, 0]).all()
    again = train[4]
    assert torch.equal(again[0], clip) and torch.equal(again[1], boxes)  # drawn from (seed, epoch, index) only
    epoch0 = [train[i][1] for i in range(9)]
    train.set_epoch(1)
    assert any(not torch.equal(train[i][1], epoch0[i]) for i in range(9))
    test = AvaDataset(split.keyframes, frames, train=False, num_frames=4, sampling_rate=2, norm=norm, seed=3,
                      num_classes=80, test_size=32)
    clip, boxes, _ = test[0]
    assert clip.shape == (3, 4, 32, 56)  # whole 32 x 56 frame, short side already 32
    np.testing.assert_allclose(boxes.numpy(), split.keyframes[0].boxes * [56, 32, 56, 32], rtol=1e-6)


# ------------------------------------------------------------------------------------------- boxes

def test_box_transforms_hand_cases():
    assert short_side_size(32, 56, 32) == (32, 56)
    assert short_side_size(480, 640, 112) == (112, 149)
    assert short_side_size(64, 48, 32) == (42, 32)
    np.testing.assert_array_equal(boxes_to_pixels(np.array([[0.25, 0.5, 0.75, 1.0]]), 40, 80), [[20, 20, 60, 40]])
    np.testing.assert_array_equal(boxes_to_pixels(np.array([[-0.1, 0.5, 1.2, 1.0]]), 40, 80), [[0, 20, 80, 40]])
    np.testing.assert_array_equal(crop_boxes(np.array([[10.0, 5, 50, 30]]), top=10, left=20, height=16, width=16),
                                  [[0, 0, 16, 16]])
    np.testing.assert_array_equal(crop_boxes(np.array([[25.0, 12, 30, 20]]), top=10, left=20, height=16, width=16),
                                  [[5, 2, 10, 10]])
    np.testing.assert_array_equal(flip_boxes(np.array([[2.0, 1, 10, 5]]), 32), [[22, 1, 30, 5]])
    plan = SpatialPlan(height=128, width=192, crop=(32, 64, 96), flip=True)  # from a 64 x 96 frame
    np.testing.assert_array_equal(plan.boxes(np.array([[40.0, 16, 56, 32]]), 64, 96), [[48, 0, 80, 32]])
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = train_plan(60, 100, rng, jitter=(40, 50), inverse=True, crop=32)
        assert 40 <= min(p.height, p.width) <= 50 and p.crop[2] == 32
        assert 0 <= p.crop[0] <= p.height - 32 and 0 <= p.crop[1] <= p.width - 32


def test_roi_align_picks_the_transformed_box_on_the_feature_map():
    """A bright square, cropped and flipped: its transformed box pools exactly the bright cells of a
    stride-16 feature map (and the bright pixels of the frame); the unflipped box would not."""
    frame = torch.zeros(1, 3, 80, 96, dtype=torch.uint8)
    frame[..., 8:40, 16:48] = 255  # box (16, 8, 48, 40) in pixels
    plan = SpatialPlan(height=80, width=96, crop=(8, 16, 64), flip=True)
    out = plan.frames(frame)
    box = plan.boxes(boxes_to_pixels(np.array([[16 / 96, 8 / 80, 48 / 96, 40 / 80]]), 80, 96), 80, 96)
    np.testing.assert_array_equal(box, [[32, 0, 64, 32]])  # crop: (0, 0, 32, 32); flip in 64: x -> 64 - x
    image = out[:, :1].float()  # [1, 1, 64, 64]
    assert image[0, 0, 0:32, 32:64].min() == 255 and image.sum() == 255 * 32 * 32
    rois = torch.tensor([[0.0, *box[0]]], dtype=torch.float32)
    pooled = roi_align(image, rois, output_size=(4, 4), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    assert torch.equal(pooled, torch.full_like(pooled, 255.0))
    unflipped = torch.tensor([[0.0, 0, 0, 32, 32]])
    assert roi_align(image, unflipped, (4, 4), 1.0, 0, True).max() == 0
    # stride-16 features through the RoI head's pooling (mean over T' = 3, 7 x 7 RoIAlign, max)
    fmap = torch.nn.functional.avg_pool2d(image, 16).unsqueeze(2).expand(1, 1, 3, 4, 4)
    head = RoIHead(dim_in=1, num_classes=1, resolution=7, spatial_scale=1 / 16, dropout=0.0)
    assert head.pool(fmap, rois).item() == pytest.approx(255.0)
    assert head.pool(fmap, unflipped).item() < 128  # only its edge samples reach the bright cells


def test_roi_head_pools_over_the_actual_temporal_length():
    torch.manual_seed(0)
    head = RoIHead(dim_in=512, num_classes=80, dropout=0.0).eval()
    tclr = build_backbone("r2plus1d_18_tclr").eval()
    with torch.inference_mode():
        feats = tclr.forward_features(torch.randn(1, 3, 8, 32, 32))
        assert feats.shape == (1, 512, 2, 2, 2)  # TCLR keeps time in layer4: T' = T/4, not T/8
        rois = torch.tensor([[0.0, 0, 0, 32, 32], [0.0, 4, 4, 12, 20]])
        manual = roi_align(feats.mean(dim=2), rois, (7, 7), 1 / 16, 0, True).amax(dim=(2, 3))
        torch.testing.assert_close(head.pool(feats, rois), manual)
        probs = head(feats, rois)
    assert probs.shape == (2, 80) and ((probs > 0) & (probs < 1)).all()


# ------------------------------------------------------------------------------------------- runs

def _tiny(data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["--cfg", str(TINY_CFG), "DATA.PATH_TO_DATA_DIR", str(data_root), "OUTPUT_DIR", str(out),
            "SOLVER.MAX_EPOCH", "1", "DATA.NUM_FRAMES", "4", "--no-progress", *extra]


def test_end_to_end_run_writes_detections_results_and_retests(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_entry(run_net_main, _tiny(data_root, out), "run_net.py") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((out / "results.json").read_text())
    assert (results["task"], results["dataset"], results["factor"], results["init_method"]) == ("ava", "ava", "task", "scratch")
    assert results["primary"]["metric"] == "mAP" and results["primary"]["higher_is_better"] is True
    assert results["primary"]["value"] == pytest.approx(100 * results["metrics"]["mAP"], abs=1e-4) == summary["mAP"]
    assert results["train"]["epochs"] == 1 and results["config"]["TRAIN"]["DATASET"] == "ava"
    # detections: every test box x every label-map class, the original normalised box, in dataset order
    ann = data_root / "ava" / "annotations"
    labelmap = sorted(read_labelmap(ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"))
    with open(out / "detections.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == results["data"]["test"]["boxes"] * len(labelmap) == 18 * 7
    assert [int(r[6]) for r in rows[:7]] == labelmap
    det_file = ann / "person_box_67091280_iou90" / "ava_detection_val_boxes_and_labels.csv"
    first = next(r for r in csv.reader(open(det_file)) if float(r[7]) >= 0.9)
    assert rows[0][:2] == first[:2]  # video id and %04d second
    assert [float(v) for v in rows[0][2:6]] == [float(v) for v in first[2:6]]  # the detector's own box
    assert all(0.0 <= float(r[7]) <= 1.0 for r in rows)
    again = frame_map(read_boxes_csv(ann / "ava_val_v2.2.csv"), read_boxes_csv(out / "detections.csv"), labelmap,
                      read_exclusions(ann / "ava_val_excluded_timestamps_v2.2.csv"))
    assert again["mAP"] == results["metrics"]["mAP"]
    # test-only run of the finished run directory: retest.json, same numbers
    assert run_entry(run_net_main, _tiny(data_root, out, "TRAIN.ENABLE", "False"), "run_net.py") == 0
    retest = json.loads((out / "retest.json").read_text())
    assert retest["metrics"]["mAP"] == results["metrics"]["mAP"]
    assert (out / "retest_detections.csv").read_text() == (out / "detections.csv").read_text()


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(data_root):
    """Learning check within the test budget: SGD steps on one batch lower the BCE of that batch."""
    ava = data_root / "ava"
    split = load_ava_split(ava, frame_lists=["train.csv"], gt_files=["ava_train_v2.2.csv"], detection_files=[],
                           score_threshold=0.9)
    frames = FrameVideos(ava / "frames", split.videos.values(), 30.0, "{name}_{index:06d}.jpg")
    ds = AvaDataset(split.keyframes, frames, train=True, num_frames=4, sampling_rate=2,
                    norm=Normalization((0.45,) * 3, (0.225,) * 3), seed=0, num_classes=80, crop_size=32, jitter=(32, 32))
    batch = collate_train([ds[0], ds[1]])
    torch.manual_seed(0)
    model = build_detection_model("r2plus1d_18", dropout=0.0)
    losses = sgd_losses(model, lambda m: detection_step(m, batch, torch.device("cpu"), torch.contiguous_format).loss)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("extra,words", [
    (["DETECTION.FOO", "1"], "Non-existent key"),
    (["TEST.NUM_ENSEMBLE_VIEWS", "10"], "Non-existent key"),  # a Charades key does nothing here: refused
    (["MODEL.NUM_CLASSES", "60"], "MODEL.NUM_CLASSES must be 80"),
    (["MODEL.INIT_METHOD", "moco", "MODEL.CKPT", "/no/such/checkpoint.pth"], "does not exist"),
    (["MODEL.INIT_METHOD", "scratch", "MODEL.CKPT", "w.pth"], "takes no MODEL.CKPT"),
    (["MODEL.INIT_METHOD", "byol", "MODEL.CKPT", "w.pth"], "unknown method"),
    (["DATA.PATH_TO_DATA_DIR", "/no/such/root"], "not an existing folder"),
])
def test_config_errors_are_one_line(data_root, tmp_path, capsys, extra, words):
    root = [] if "DATA.PATH_TO_DATA_DIR" in extra else ["DATA.PATH_TO_DATA_DIR", str(data_root)]  # a key once
    argv = ["--cfg", str(TINY_CFG), *root, "OUTPUT_DIR", str(tmp_path / "r"), *extra]
    assert run_entry(ava_main, argv, "severe run ava") == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_data_root_and_wrong_task(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEVERE_DATA", raising=False)
    assert run_entry(ava_main, ["--cfg", str(TINY_CFG)], "severe run ava") == 2
    assert "no data root" in capsys.readouterr().err
    charades = CONFIGS / "Charades" / "TINY_SYNTHETIC.yaml"
    assert run_entry(ava_main, ["--cfg", str(charades)], "severe run ava") == 2
    assert "is a charades config" in capsys.readouterr().err
    empty = tmp_path / "root"
    empty.mkdir()
    assert run_entry(ava_main, ["--cfg", str(TINY_CFG), "DATA.PATH_TO_DATA_DIR", str(empty)], "severe run ava") == 2
    assert "ava folder" in capsys.readouterr().err


def test_roi_scale_comes_from_the_backbone_stride():
    """DETECTION.SPATIAL_SCALE_FACTOR 0 (the shipped config) takes 1 / the backbone's spatial stride: 1/16 for
    R(2+1)D-18, 1/32 for I3D; a value that differs from the stride is a one-line error."""
    task = TASKS["ava"]
    for arch, scale in (("r2plus1d_18", 1 / 16), ("i3d", 1 / 32)):
        cfg = lifecycle.load_task_config(task, TINY_CFG, ["MODEL.ARCH", arch])
        assert cfg.DETECTION.SPATIAL_SCALE_FACTOR == 0
        model = task.build_model(cfg, {"arch": arch}, None)
        assert model.head.spatial_scale == scale and model.head.projection.in_features == model.backbone.feature_dim
    cfg = lifecycle.load_task_config(task, TINY_CFG, ["MODEL.ARCH", "i3d", "DETECTION.SPATIAL_SCALE_FACTOR", "16"])
    with pytest.raises(SevereError, match="SPATIAL_SCALE_FACTOR 16 does not match the spatial stride 32 of backbone 'i3d'"):
        task.build_model(cfg, {"arch": "i3d"}, None)
