"""Recognition experiments end to end on synthetic data: config resolution, runs, resume, test, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from severe.cli import main as severe_main
from severe.config import load_config
from severe.engine import load_checkpoint
from severe.engine.trainer import Trainer
from severe.errors import SevereError
from severe.models import BACKBONES, build_backbone, check_backbone_contract, register_backbone
from severe.recognition.config import recognition_defaults, validate
from severe.recognition.data import ArrowOfTime
from severe.recognition.runner import CONFIG_DIR, plan_run, run, retest_run
from severe.tasks.recognition import build_model, verb_noun_step
from severe.synth.checkpoints import write_synthetic_checkpoint
from severe.data.registry import read_split
from severe.data.subsets import read_subset_list
from tests.helpers import RECOGNITION_TINY

TINY = RECOGNITION_TINY


@pytest.fixture
def data_root(synthetic_root) -> Path:
    return synthetic_root


@pytest.fixture
def moco_weights(synthetic_checkpoint) -> Path:
    return synthetic_checkpoint("moco", seed=1, name="checkpoint_0199.pth.tar")


def test_every_shipped_config_loads_and_validates():
    files = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert len(files) >= 30
    ids = set()
    for f in files:
        cfg = load_config(recognition_defaults(), f)
        validate(cfg)
        assert cfg.EXPERIMENT.ID not in ids, f
        ids.add(cfg.EXPERIMENT.ID)
    assert {"ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1"} <= ids  # SEVERE columns


def test_sample_configs_inherit_their_domain_row():
    cfg = load_config(recognition_defaults(), CONFIG_DIR / "samples" / "gym99_1000.yaml")
    assert (cfg.DATA.DATASET, cfg.DATA.NUM_EXAMPLES, cfg.EXPERIMENT.FACTOR) == ("gym99", 1000, "samples")
    assert list(cfg.TRAIN.MILESTONES) == [6, 10, 14]


def test_init_exceptions_applied_from_the_method(moco_weights, tmp_path):
    avid = tmp_path / "avid.pth"
    write_synthetic_checkpoint("avid_cma", avid, dtype=torch.float16)
    plan = plan_run("domain/ucf101", "avid_cma", avid)
    assert plan.cfg.TRAIN.LR == 1e-3 and [r.method for r in plan.rules] == ["avid_cma"]
    assert plan_run("linear/ucf101", "avid_cma", avid).cfg.TRAIN.LR == 0.01  # LP keeps the default lr
    scratch = plan_run("domain/ssv2", "scratch", None)
    assert (scratch.cfg.TRAIN.EPOCHS, list(scratch.cfg.TRAIN.MILESTONES), scratch.cfg.TRAIN.WEIGHT_DECAY) == (25, [12, 19, 22], 1e-4)
    sub = plan_run("samples/ucf101_1000", "scratch", None).cfg  # the plain 1000-sample schedule (docs/protocol.md §3)
    assert (sub.TRAIN.EPOCHS, list(sub.TRAIN.MILESTONES), sub.TRAIN.WEIGHT_DECAY) == (16, [6, 10, 14], 0.0)
    assert plan_run("granularity/gym_vault", "scratch", None).cfg.TRAIN.EPOCHS == 18  # default row
    # the command line wins over the exception
    assert plan_run("domain/ucf101", "avid_cma", avid, ["TRAIN.LR", "0.5"]).cfg.TRAIN.LR == 0.5
    tclr = tmp_path / "tclr.pth"
    write_synthetic_checkpoint("tclr", tclr, dtype=torch.float16)
    assert plan_run("linear/ucf101", "tclr", tclr, trust=True).cfg.DATA.NUM_FRAMES == 32
    assert plan_run("domain/ntu60", "tclr", tclr, trust=True).cfg.DATA.NUM_FRAMES == 16


@pytest.mark.parametrize("args,words", [
    (["domain/ucf101", "--init", "moco"], "needs --weights"),
    (["domain/ucf101", "--init", "scratch", "DATA.NOPE", "1"], "Non-existent"),
    (["domain/ucf101", "--init", "scratch", "TRAIN.EPOCHS", "many"], "Type mismatch"),
    (["domain/nosuch", "--init", "scratch"], "config domain/nosuch not found"),
    (["domain/ucf101", "--init", "simclr", "--weights", "x.pth"], "unknown method 'simclr'"),
    (["domain/ucf101", "--init", "scratch", "TRAIN.MODE", "probe"], "TRAIN.MODE must be one of"),
    (["domain/ucf101", "--init", "scratch", "DATA.VAL_FRACTION", "1.0"], "DATA.VAL_FRACTION must be in"),
    (["linear/ucf101_knn", "--init", "scratch", "DATA.VAL_FRACTION", "0.1"], "kNN has no epochs"),
    (["domain/ek100", "--init", "scratch", "DATA.TRAIN_SHORT_SIDE", "[320, 256]"], "DATA.TRAIN_SHORT_SIDE must be [] or [low, high]"),
    (["linear/ucf101", "--init", "scratch", "TRAIN.FREEZE_BN_STATS", "True"], "apply to finetuning only"),
    (["domain/ucf101", "--init", "scratch", "MODEL.ARCH", "resnet50"], "MODEL.ARCH 'resnet50' is not a registered"),
])
def test_bad_runs_fail_with_one_line(args, words, capsys, monkeypatch):
    monkeypatch.delenv("SEVERE_DATA", raising=False)
    assert severe_main(["run", "recognition", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_data_root_and_unknown_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SEVERE_DATA", raising=False)
    assert severe_main(["run", "recognition", "domain/ucf101", "--init", "scratch"]) == 2
    assert "no data root" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("EXPERIMENT: {ID: x}\nDATA: {DATASET: ucf202}\n")
    assert severe_main(["run", "recognition", str(bad), "--init", "scratch", "--data-root", str(tmp_path)]) == 2
    assert "unknown dataset 'ucf202'" in capsys.readouterr().err
    dup = tmp_path / "dup.yaml"
    dup.write_text("EXPERIMENT: {ID: x}\nSEED: 1\nSEED: 2\n")
    assert severe_main(["run", "recognition", str(dup), "--init", "scratch", "--data-root", str(tmp_path)]) == 2
    assert "key 'SEED' is given twice" in capsys.readouterr().err


def test_missing_media_is_an_error_unless_allowed(data_root, tmp_path, capsys):
    root = tmp_path / "data"
    import shutil
    shutil.copytree(data_root / "ucf101", root / "ucf101")
    victim = next((root / "ucf101" / "UCF-101").rglob("*.avi"))
    victim.unlink()
    args = ["run", "recognition", "domain/ucf101", "--init", "scratch", "--data-root", str(root), "--no-progress"]
    assert severe_main([*args, "--out", str(tmp_path / "r1"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "1 of" in err and "media missing" in err and victim.name in err
    assert severe_main([*args, "--out", str(tmp_path / "r2"), *TINY[2:], "TRAIN.EPOCHS", "1", "DATA.ALLOW_MISSING", "True"]) == 0
    res = json.loads((tmp_path / "r2" / "results.json").read_text())
    assert res["data"]["train"]["missing"] + res["data"]["test"]["missing"] == 1
    assert any("missing media" in d for d in res["deviations"])
    missing_list = list((tmp_path / "r2").glob("*_missing.txt"))
    assert len(missing_list) == 1 and victim.name in missing_list[0].read_text()


class TinyMotionBackbone(torch.nn.Module):
    """A user-registered backbone: frame differences -> two small 3D convs -> pooled 64-d feature. It learns
    the synthetic motion classes in seconds on CPU, where R(2+1)D-18 from scratch would need hours."""

    arch, feature_dim = "test_tiny_motion", 64

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.net = nn.Sequential(
            nn.Conv3d(3, 16, (3, 5, 5), padding=(1, 2, 2)), nn.BatchNorm3d(16), nn.ReLU(),
            nn.Conv3d(16, 32, 3, stride=2, padding=1), nn.BatchNorm3d(32), nn.ReLU(),
            nn.Conv3d(32, 64, 1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten())

    def forward_features(self, x):  # frame differences keep T - 1 steps; the stride-2 conv halves them (ceil)
        return self.net[:-2](x[:, :, 1:] - x[:, :, :-1])

    def forward(self, x):
        return self.net(x[:, :, 1:] - x[:, :, :-1])


TINY_MOTION_SPEC = dict(feature_dim=64, temporal_stride=2, spatial_stride=2, default_frames=8, default_crop=32)


@pytest.fixture()
def tiny_motion_arch():
    register_backbone(TinyMotionBackbone.arch, TinyMotionBackbone, **TINY_MOTION_SPEC)
    yield TinyMotionBackbone.arch
    BACKBONES.pop(TinyMotionBackbone.arch)


def test_the_tiny_backbone_keeps_the_contract(tiny_motion_arch):
    assert check_backbone_contract(build_backbone(tiny_motion_arch), 8, 32) == ((1, 64), (1, 64, 4, 16, 16))


@pytest.mark.slow
def test_finetune_through_the_whole_pipeline_learns_well_above_chance(data_root, tiny_motion_arch, tmp_path):
    """Generated videos -> official lists -> decode, sample, augment -> train -> dense test: 5 motion classes
    (chance 0.2), 15 training videos whose appearance never tells the class."""
    overrides = ["MODEL.ARCH", tiny_motion_arch, "DATA.NUM_FRAMES", "8", "DATA.CROP", "32", "DATA.TEST_RESIZE", "32",
                 "DATA.NUM_WORKERS", "0", "DATA.TEST_CLIPS", "4", "DATA.TRAIN_CLIPS_PER_VIDEO", "8", "TEST.BATCH_SIZE", "4",
                 "TRAIN.BATCH_SIZE", "8", "TRAIN.LR", "3e-3", "TRAIN.EPOCHS", "12", "TRAIN.MILESTONES", "[10]"]
    res = run(plan_run("domain/ucf101", "scratch", None, overrides), data_root, tmp_path / "run", progress=False)
    assert res["init"]["arch"] == tiny_motion_arch and res["data"]["test_videos"] == 10
    # seeds 100, 1, 2 give 0.7, 0.7, 1.0; the bound leaves room for another CPU's rounding to change the path
    assert res["metrics"]["video_top1"] >= 0.5 and res["metrics"]["mean_class_accuracy"] >= 0.5
    with pytest.raises(SevereError, match="already registered"):
        register_backbone(tiny_motion_arch, TinyMotionBackbone, **TINY_MOTION_SPEC)


def test_model_arch_is_checked(moco_weights):
    assert plan_run("domain/ucf101", "scratch", None, ["MODEL.ARCH", "r3d_18"]).cfg.MODEL.ARCH == "r3d_18"
    with pytest.raises(SevereError, match="MODEL.ARCH 'resnet50' is not a registered architecture; known: r2plus1d_18"):
        plan_run("domain/ucf101", "scratch", None, ["MODEL.ARCH", "resnet50"])
    with pytest.raises(SevereError, match=r"differs from the architecture of the 'moco' weights \(r2plus1d_18\)"):
        plan_run("domain/ucf101", "moco", moco_weights, ["MODEL.ARCH", "r3d_18"])


@pytest.mark.slow
def test_finetune_run_writes_the_record_and_test_reproduces_it(data_root, moco_weights, tmp_path):
    out = tmp_path / "run"
    plan = plan_run("domain/ucf101", "moco", moco_weights, TINY)
    res = run(plan, data_root, out, progress=False)
    for name in ("config.yaml", "init.json", "metrics.jsonl", "checkpoint_last.pt", "results.json", "train.log"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "results.json").read_text())
    assert res["metrics"] == saved["metrics"]
    assert saved["init_method"] == "moco" and saved["mode"] == "finetune" and saved["factor"] == "domain"
    assert saved["data"]["test_videos"] == 10 and saved["data"]["test_failures"] == 0
    assert saved["primary"]["value"] == pytest.approx(100 * saved["metrics"]["video_top1"])
    assert saved["provenance"]["packages"]["torch"].startswith("2.14.1")
    assert saved["init"]["source_sha256"] and saved["data"]["train"]["sha256"]
    assert saved["config"]["TRAIN"]["EPOCHS"] == 2 and saved["seed"] == 100
    # a finished run is never overwritten
    with pytest.raises(SevereError, match="finished run"):
        run(plan, data_root, out, progress=False)
    # testing the run directory alone gives the same numbers
    again = retest_run(out, data_root, progress=False)
    assert again["metrics"] == saved["metrics"]
    assert (out / "retest.json").is_file()


@pytest.mark.slow
def test_validation_split_is_carved_from_train_and_logged(data_root, tmp_path):
    out = tmp_path / "val"
    res = run(plan_run("domain/ucf101", "scratch", None, TINY + ["DATA.VAL_FRACTION", "0.34"]), data_root, out,
              progress=False)
    held = [key for key, _ in read_subset_list(out / "val_split.txt")]
    assert len(held) == 5 and res["val"]["videos"] == 5  # 3 training videos per class -> 1 held out per class
    assert res["data"]["train"]["used"] == 10 and res["data"]["test_videos"] == 10
    assert not set(held) & {e.key for e in read_split("ucf101", data_root, "test")}
    epochs = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["event"] == "epoch"]
    assert len(epochs) == 2 and all(set(r["val"]) == {"video_top1", "video_top5", "mean_class_accuracy"} for r in epochs)
    assert res["val"]["last_epoch"] == epochs[-1]["val"]
    assert any("held out for validation" in d for d in res["deviations"])
    # the samples seen per epoch are the 10 remaining training videos
    assert epochs[0]["samples"] == 8  # 10 clips, batch 4, last partial batch dropped
    assert retest_run(out, data_root, progress=False)["metrics"] == res["metrics"]


def test_linear_probe_keeps_the_backbone_bit_identical(data_root, moco_weights, tmp_path):
    out = tmp_path / "lin"
    plan = plan_run("linear/ucf101", "moco", moco_weights, TINY + ["TRAIN.BATCH_SIZE", "4"])
    assert plan.cfg.TRAIN.MODE == "linear"
    run(plan, data_root, out, progress=False)
    trained = load_checkpoint(out / "checkpoint_last.pt")["model"]
    for key, value in plan.weights.state_dict.items():
        assert torch.equal(trained["backbone." + key], value.float() if value.is_floating_point() else value), key
    assert trained["head.weight"].shape == (101, 512)  # head sized to the dataset, not 400


@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted(data_root, tmp_path, monkeypatch):
    full = tmp_path / "full"
    run(plan_run("domain/ucf101", "scratch", None, TINY), data_root, full, progress=False)

    original_fit = Trainer.fit

    def killed_fit(self, resume=False, stop_after_epoch=None):
        original_fit(self, resume=resume, stop_after_epoch=0)
        raise KeyboardInterrupt  # the process dies after epoch 0 was checkpointed

    part = tmp_path / "part"
    monkeypatch.setattr(Trainer, "fit", killed_fit)
    with pytest.raises(KeyboardInterrupt):
        run(plan_run("domain/ucf101", "scratch", None, TINY), data_root, part, progress=False)
    monkeypatch.setattr(Trainer, "fit", original_fit)
    with pytest.raises(SevereError, match="--resume"):
        run(plan_run("domain/ucf101", "scratch", None, TINY), data_root, part, progress=False)
    with pytest.raises(SevereError, match="differs from the config"):
        run(plan_run("domain/ucf101", "scratch", None, TINY + ["SEED", "5"]), data_root, part, resume=True, progress=False)
    resumed = run(plan_run("domain/ucf101", "scratch", None, TINY), data_root, part, resume=True, progress=False)

    a, b = load_checkpoint(full / "checkpoint_last.pt")["model"], load_checkpoint(part / "checkpoint_last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["metrics"] == json.loads((full / "results.json").read_text())["metrics"]


def test_knn_probe_runs_without_training(data_root, tmp_path):
    res = run(plan_run("linear/ucf101_knn", "scratch", None, TINY + ["KNN.K", "3"]), data_root, tmp_path / "knn", progress=False)
    assert res["mode"] == "knn" and 0.0 <= res["metrics"]["video_top1"] <= 1.0
    assert not (tmp_path / "knn" / "checkpoint_last.pt").exists()


class _FakeClips:
    """Stands in for ClipDataset: clip values encode the frame index along time."""

    def __init__(self, mode: str):
        self.mode, self.failures, self.epoch = mode, None, 0

    def set_epoch(self, e):
        self.epoch = e

    def failed_keys(self):
        return []

    def __len__(self):
        return 3

    def __getitem__(self, i):
        t = torch.arange(4, dtype=torch.float32).view(1, 4, 1, 1)
        if self.mode == "test":
            return t.expand(2, 3, 4, 2, 2).clone(), 7, i
        return t.expand(3, 4, 2, 2).clone(), 7, i


def test_arrow_of_time_labels_and_reversal():
    test = ArrowOfTime(_FakeClips("test"), seed=0)
    assert len(test) == 6
    fwd, lab0, _ = test[2]
    rev, lab1, _ = test[3]
    assert (lab0, lab1) == (0, 1)
    assert torch.equal(fwd[0, 0, :, 0, 0], torch.arange(4.0)) and torch.equal(rev[0, 0, :, 0, 0], torch.arange(3.0, -1, -1))
    train = ArrowOfTime(_FakeClips("train"), seed=0)
    labels = [train[i][1] for i in range(3)]
    for i, lab in enumerate(labels):
        clip = train[i][0]
        assert torch.equal(clip[0, :, 0, 0], torch.arange(3.0, -1, -1) if lab else torch.arange(4.0))
    # deterministic per (seed, epoch, item)
    assert labels == [ArrowOfTime(_FakeClips("train"), seed=0)[i][1] for i in range(3)]
    draws = []
    for epoch in range(8):
        train.set_epoch(epoch)
        draws += [train[i][1] for i in range(3)]
    assert 0 < np.mean(draws) < 1



def test_ek100_segments_run_with_their_own_recipe(synthetic_root, tmp_path):
    root = synthetic_root
    plan = plan_run("domain/ek100", "scratch", None, TINY + ["TRAIN.EPOCHS", "1", "DATA.TRAIN_SHORT_SIDE", "[36, 40]",
                                                              "TRAIN.PRECISE_BN_BATCHES", "2"])
    assert (plan.cfg.TRAIN.OPTIMIZER, plan.cfg.TRAIN.NESTEROV, plan.cfg.DATA.FPS, plan.cfg.DATA.COLOR_JITTER) == ("sgd", True, 30.0, False)
    assert plan_run("domain/ek100", "scratch", None).cfg.DATA.TRAIN_SHORT_SIDE == [256, 320]
    res = run(plan, root, tmp_path / "ek", progress=False)
    assert res["dataset"] == "ek100" and res["data"]["test_videos"] == res["data"]["test"]["used"] > 0
    assert not [d for d in res["deviations"] if d.startswith("EK-100")]  # the noun head trains, as the original
    records = [json.loads(line) for line in (tmp_path / "ek" / "metrics.jsonl").read_text().splitlines()]
    start, epoch = records[0], records[-1]
    assert 0.0 <= epoch["train_noun_top1"] <= 1.0
    trained = load_checkpoint(tmp_path / "ek" / "checkpoint_last.pt")["model"]
    assert trained["head.main.weight"].shape == (97, 512) and trained["head.aux.weight"].shape == (300, 512)
    assert retest_run(tmp_path / "ek", root, progress=False)["metrics"] == res["metrics"]  # verb scores only
    assert start["optimizer"]["kind"] == "sgd" and start["optimizer"]["nesterov"] is True
    assert start["mode_record"]["bn_statistics_frozen"] == 37  # every BatchNorm of R(2+1)D-18
    assert epoch["val"] == {"precise_bn": True, "batches": 2}  # after the last epoch, before the test


def test_verb_noun_head_and_loss_by_hand(tmp_path):
    torch.manual_seed(0)
    model = build_model("r2plus1d_18", None, 4, "default", 0.0, noun_classes=3)
    features = torch.randn(5, 512)
    model.train()
    both = model.head(features)
    with torch.no_grad():
        verb_logits = features @ model.head.main.weight.T + model.head.main.bias
        noun_logits = features @ model.head.aux.weight.T + model.head.aux.bias
    assert torch.allclose(both, torch.cat([verb_logits, noun_logits], 1), atol=1e-6)
    model.eval()
    assert torch.allclose(model.head(features), verb_logits, atol=1e-6)  # the test protocol sees verbs only
    # the step: mean of the two cross-entropies, nouns looked up by the returned video index
    model.train()
    model.backbone = torch.nn.Flatten()  # clips are the features themselves here
    nouns = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    verbs, videos = torch.tensor([0, 3, 1, 2, 0]), torch.tensor([6, 0, 3, 4, 1])
    out = verb_noun_step(4, nouns)(model, (features, verbs, videos), torch.device("cpu"), torch.contiguous_format)
    ce = lambda z, y: float(-torch.log_softmax(z, 1)[torch.arange(len(y)), y].mean())  # noqa: E731
    assert out.loss.item() == pytest.approx((ce(verb_logits, verbs) + ce(noun_logits, nouns[videos])) / 2, abs=1e-5)
    assert int(out.sums["noun_top1"]) == int((noun_logits.argmax(1) == nouns[videos]).sum())
    with pytest.raises(SevereError, match="MODEL.NOUN_HEAD=300: an auxiliary noun head exists for ek100"):
        plan_run("domain/ucf101", "scratch", None, ["MODEL.NOUN_HEAD", "300"])


def test_task_normalisation_constants_and_tclr_override():
    from severe.tasks.recognition import input_normalization

    cfg = load_config(recognition_defaults(), CONFIG_DIR / "domain" / "ek100.yaml")
    imagenet = {"normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, "channel_order": "RGB"}
    assert input_normalization(cfg, imagenet).mean == (0.45, 0.45, 0.45)
    tclr = input_normalization(cfg, {"normalize": None, "channel_order": "BGR"})
    assert tclr.mean is None and tclr.channel_order == "BGR"
    ucf = load_config(recognition_defaults(), CONFIG_DIR / "domain" / "ucf101.yaml")
    assert input_normalization(ucf, imagenet).mean == (0.485, 0.456, 0.406)
