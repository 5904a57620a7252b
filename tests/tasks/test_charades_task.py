"""Charades multi-label classification (docs/tasks.md §2) on synthetic data: configs and seeds, clip sampling,
span labels, the 30-view max aggregation, precise BN, TCLR pooling, an end-to-end run, a learning step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from severe.cli import run_entry
from severe.data.readers.frame_list import FrameListVideo
from severe.data.transforms import Normalization
from severe.data.spatial import uniform_crop_offsets
from severe.engine import predict_dense, read_jsonl
from severe.errors import SevereError
from severe.multilabel.cli import main as charades_main
from severe.multilabel.data import CharadesDataset, clip_positions, clip_span, train_start, view_starts
from severe.multilabel.model import build_multilabel_model, update_bn_stats
from severe.tasks import TASKS, lifecycle
from severe.tasks.charades import multilabel_step
from severe.tasks.slowfast import run_net_main
from tests.helpers import SLOWFAST_CONFIGS, sgd_losses

CONFIGS = SLOWFAST_CONFIGS / "Charades"
CHARADES_CFG = CONFIGS / "R2PLUS1D_18_32x8_112.yaml"
TINY_CFG = CONFIGS / "TINY_SYNTHETIC.yaml"


@pytest.fixture
def data_root(synthetic_root) -> Path:
    return synthetic_root


class PositionFrames:
    """Stand-in for FrameVideos: frame at position p has every pixel = p (so a clip reveals its positions)."""

    def __init__(self, height: int = 6, width: int = 8) -> None:
        self.height, self.width = height, width

    def read(self, video_id: str, positions) -> torch.Tensor:
        values = torch.tensor(positions, dtype=torch.uint8).view(-1, 1, 1, 1)
        return values.expand(-1, 3, self.height, self.width).clone()


def _video(frame_labels: list[tuple[int, ...]]) -> FrameListVideo:
    n = len(frame_labels)
    return FrameListVideo("vid", 0, tuple(f"vid/vid-{i + 1:06d}.jpg" for i in range(n)), tuple(frame_labels))


RAW = Normalization(None, None, "RGB")


def load_task_config(task: str, path, overrides=()):
    return lifecycle.load_task_config(TASKS[task], path, overrides)  # x / 255 only: clip * 255 = frame position


# ------------------------------------------------------------------------------------------- configs

def test_shipped_config_has_the_protocol_settings_and_seeds():
    cfg = load_task_config("charades", CHARADES_CFG)  # PySlowFast names in the file, read as common names
    assert (cfg.TRAIN.LR, list(cfg.SOLVER.STEPS), cfg.TRAIN.EPOCHS) == (0.0375, [0, 41, 49], 57)
    assert (cfg.TRAIN.WEIGHT_DECAY, cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.WARMUP_START_LR) == (1e-4, 4.0, 1e-4)
    assert (cfg.TRAIN.BATCH_SIZE, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == (16, 32, 8)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.DATA.INV_UNIFORM_SAMPLE) == (10, 3, True)
    assert (cfg.BN.USE_PRECISE_STATS, cfg.BN.NUM_BATCHES_PRECISE, cfg.TRAIN.CHECKPOINT_EVERY) == (True, 200, 6)
    assert list(cfg.DATA.TRAIN_JITTER_SCALES) == [256, 340] and cfg.SEED == 1
    seeds = [load_task_config("charades", CHARADES_CFG, ["RNG_SEED", str(s), "MODEL.INIT_METHOD", "gdt"]) for s in (1, 2, 3)]
    assert [str(lifecycle.default_run_dir(c, "gdt")) for c in seeds] == [f"runs/charades/gdt/seed{s}" for s in (1, 2, 3)]
    with pytest.raises(SevereError, match="RNG_SEED is another name of SEED; give one of them"):
        load_task_config("charades", CHARADES_CFG, ["RNG_SEED", "2", "SEED", "2"])
    for key, value in (("DETECTION.ROI_XFORM_RESOLUTION", "7"), ("AVA.DETECTION_SCORE_THRESH", "0.9")):
        with pytest.raises(SevereError, match="Non-existent key"):  # AVA keys do nothing here: refused
            load_task_config("charades", CHARADES_CFG, [key, value])
    with pytest.raises(SevereError, match="NUM_SPATIAL_CROPS"):
        load_task_config("charades", CHARADES_CFG, ["TEST.NUM_SPATIAL_CROPS", "2"])


# ------------------------------------------------------------------------------------------- sampling

def test_clip_sampling_hand_cases():
    assert clip_span(32, 8) == 249
    assert view_starts(100, 29, 10) == [0, 8, 16, 24, 32, 39, 47, 55, 63, 71]
    assert view_starts(1000, 249, 10)[-1] == 751 and view_starts(120, 249, 10) == [0] * 10
    assert clip_positions(-5, 20, 4, 4) == [0, 0, 3, 7]
    assert clip_positions(10, 20, 4, 4) == [10, 14, 18, 19]
    rng = np.random.default_rng(0)
    long_starts = {train_start(300, 249, rng) for _ in range(3000)}
    short_starts = {train_start(200, 249, rng) for _ in range(3000)}
    assert long_starts == set(range(0, 52)) and short_starts == set(range(-49, 1))  # inclusive ranges


def test_training_label_is_the_union_over_the_sampled_span():
    labels = [(i % 157,) for i in range(60)]  # frame i carries class i
    ds = CharadesDataset([_video(labels)], PositionFrames(), train=True, num_frames=4, sampling_rate=5, norm=RAW,
                         seed=0, num_classes=157, crop_size=4, jitter=(6, 6))
    for epoch in range(4):
        ds.set_epoch(epoch)
        clip, target, _ = ds[0]
        positions = (clip[0, :, 0, 0] * 255).round().long().tolist()
        assert positions == ds.train_positions(0) and positions[1] - positions[0] == 5
        expected = set(range(positions[0], positions[-1] + 1))  # every frame between first and last, not just sampled ones
        assert set(target.nonzero().flatten().tolist()) == expected
    short = CharadesDataset([_video([(1,), (), (2,)])], PositionFrames(), train=False, num_frames=4, sampling_rate=5,
                            norm=RAW, seed=0, num_classes=157, test_size=6, ensemble_views=2, spatial_crops=1)
    assert short[0][1].nonzero().flatten().tolist() == [1, 2]  # test label: the whole video


def test_thirty_views_and_max_aggregation():
    ds = CharadesDataset([_video([()] * 100), _video([(3,)] * 40)], PositionFrames(6, 8), train=False, num_frames=4,
                         sampling_rate=3, norm=RAW, seed=0, num_classes=157, test_size=4)
    views, target, idx = ds[0]
    assert views.shape == (30, 3, 4, 4, 4) and idx == 0 and target.sum() == 0
    starts = (views[::3, 0, 0, 0, 0] * 255).round().long().tolist()
    assert starts == view_starts(100, clip_span(4, 3), 10)  # 10 temporal clips, 3 crops each
    # landscape 4 x 5 after the short side -> 4: left / centre / right crops; portrait: top / middle / bottom
    assert [uniform_crop_offsets(4, 5, 4, k) for k in (0, 1, 2)] == [(0, 0), (0, 1), (0, 1)]
    assert [uniform_crop_offsets(10, 4, 4, k) for k in (0, 1, 2)] == [(0, 0), (3, 0), (6, 0)]
    assert [uniform_crop_offsets(4, 12, 4, k) for k in (0, 1, 2)] == [(0, 0), (0, 4), (0, 8)]

    class ViewScore(nn.Module):
        """logit of class c = (mean pixel of the view - 0.15) * (c + 1): views differ, classes differ."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = x.mean(dim=(1, 2, 3, 4), keepdim=False).unsqueeze(1)
            return (m - 0.15) * torch.arange(1, 158, dtype=x.dtype)

    out = predict_dense(ViewScore(), ds, batch_size=2, aggregate="sigmoid_max", progress=False)
    for i in range(2):
        views = ds[i][0]
        expected = torch.sigmoid(ViewScore()(views)).amax(dim=0).numpy()
        np.testing.assert_allclose(out.values[i], expected, rtol=1e-6)
        assert not np.allclose(out.values[i], torch.sigmoid(ViewScore()(views)).mean(dim=0).numpy())
    np.testing.assert_array_equal(out.labels[1].nonzero()[0], [3])


def test_precise_bn_averages_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.ReLU())
    batches = [torch.randn(2, 3, 2, 3, 3) * (i + 1) + i for i in range(5)]
    feats = [model[0](b).detach() for b in batches[:3]]
    used = update_bn_stats(model, iter(batches), 3, lambda m, b: m(b))
    assert used == 3 and model[1].momentum == 0.1 and model.training
    means = torch.stack([f.mean(dim=(0, 2, 3, 4)) for f in feats]).mean(0)
    variances = torch.stack([f.transpose(0, 1).flatten(1).var(dim=1, unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(model[1].running_mean, means)
    torch.testing.assert_close(model[1].running_var, variances)


def test_tclr_model_pools_its_temporal_map():
    torch.manual_seed(0)
    model = build_multilabel_model("r2plus1d_18_tclr", num_classes=157).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.inference_mode():
        feats = model.backbone.forward_features(x)
        assert feats.shape[2] == 2  # T/4
        torch.testing.assert_close(model(x), model.head(feats.mean(dim=(2, 3, 4))))


# ------------------------------------------------------------------------------------------- runs

def test_end_to_end_run_with_precise_bn(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--cfg", str(TINY_CFG), "DATA.PATH_TO_DATA_DIR", str(data_root), "OUTPUT_DIR", str(out),
            "SOLVER.MAX_EPOCH", "1", "DATA.NUM_FRAMES", "4", "TEST.NUM_ENSEMBLE_VIEWS", "2", "RNG_SEED", "2",
            "--no-progress"]
    assert run_entry(run_net_main, argv, "run_net.py") == 0  # dispatched on TRAIN.DATASET
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((out / "results.json").read_text())
    assert (results["task"], results["factor"], results["seed"], results["primary"]["metric"]) == ("charades", "task", 2, "mAP")
    assert 0 <= results["metrics"]["mAP"] <= 1 and results["primary"]["value"] == pytest.approx(100 * results["metrics"]["mAP"], abs=1e-4)
    assert summary["mAP"] == results["primary"]["value"] and summary["seed"] == 2
    assert (results["data"]["test_videos"], results["data"]["views_per_video"]) == (4, 6)
    epochs = read_jsonl(out / "metrics.jsonl", "epoch")
    assert epochs[-1]["val"] == {"precise_bn": True, "batches": 2}
    assert run_entry(charades_main, argv[:-1] + ["TRAIN.ENABLE", "False"], "severe run charades") == 0
    assert json.loads((out / "retest.json").read_text())["metrics"]["mAP"] == results["metrics"]["mAP"]


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    """Learning check within the test budget: SGD steps on one batch lower its BCE-with-logits."""
    torch.manual_seed(0)
    clips = torch.randn(3, 3, 4, 32, 32)
    targets = torch.zeros(3, 157)
    targets[0, 5] = targets[1, [5, 9]] = targets[2, 100] = 1
    model = build_multilabel_model("r2plus1d_18", num_classes=157, dropout=0.0)
    losses = sgd_losses(model, lambda m: multilabel_step(m, (clips, targets), torch.device("cpu"), torch.contiguous_format).loss)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("extra,words", [
    (["TEST.NUM_VIEWS", "3"], "Non-existent key"),
    (["MODEL.NUM_CLASSES", "80"], "MODEL.NUM_CLASSES must be 157"),
    (["MODEL.INIT_METHOD", "gdt", "MODEL.CKPT", "/no/such/gdt_K400.pth"], "does not exist"),
    (["MODEL.INIT_METHOD", "tclr"], "needs MODEL.CKPT"),
    (["MODEL.INIT_METHOD", ""], "MODEL.INIT_METHOD is empty"),
])
def test_config_errors_are_one_line(data_root, tmp_path, capsys, extra, words):
    argv = ["--cfg", str(TINY_CFG), "DATA.PATH_TO_DATA_DIR", str(data_root), "OUTPUT_DIR", str(tmp_path / "r"), *extra]
    assert run_entry(charades_main, argv, "severe run charades") == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err
