"""What each runner passes to its metric, end to end: deterministic fake models whose outputs are written out
here, and every number the runner writes checked against a value computed in this file (by hand or with numpy),
never by the code under test.
"""

from __future__ import annotations

import csv
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import severe.metrics.ava as ava_metrics
from severe.checkpoints.convert import Converted
from severe.checkpoints.weights import SCRATCH_META
from severe.cli import COMMANDS
from severe.cli import main as severe_main
from severe.data.registry import read_split
from severe.data.subsets import read_subset_list
from severe.engine import (DistContext, MultiStepLR, OptimizerSpec, Trainer, gather_by_index, load_checkpoint,
                           save_checkpoint, seed_everything)
from severe.engine import distributed as distributed_module
from severe.errors import SevereError
from severe.models import build_backbone
from severe.tasks import TASKS, lifecycle
from severe.tasks.ava import AvaTask
from severe.tasks.recognition import RecognitionTask
from severe.tasks.schema import flag_overrides
from tests.helpers import SLOWFAST_CONFIGS, TinyNet, ToyTrain


# ------------------------------------------------------------------------------------------- severe eval

def test_severe_eval_is_a_registered_command(capsys):
    assert COMMANDS["eval"][0] == "severe.eval_cli"  # a KeyError fails the test: it must never be skipped
    assert severe_main(["eval", "--help"]) == 0
    assert "ava" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- recognition

# per-clip logits of the fake model (row r of a forward pass); classes 50, 60, 70 have no test video, 3 has two
A, B, C, D = 50, 60, 70, 3
ROWS = [{A: 5.0}] + [{C: 3.0}] * 4 + [{D: 4.0}] * 4 + [{B: 80.0}]  # 10 rows; every other class: logit 0


def _logit_table(num_classes: int) -> np.ndarray:
    table = np.zeros((len(ROWS), num_classes))
    for r, row in enumerate(ROWS):
        for c, v in row.items():
            table[r, c] = v
    return table


class ClipTableModel(nn.Module):
    """Logits of the i-th clip of a forward pass = row i mod 10 of the table, whatever the pixels."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(clips.shape[0]) % len(self.table)
        return self.table[rows] + 0.0 * self.anchor


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_dense_test_averages_probabilities_over_ten_clips(synthetic_root, tmp_path, monkeypatch):
    table = _logit_table(101)
    # the fake model separates the candidate aggregations: only the probability mean over all 10 clips gives D
    assert table[0].argmax() == A  # a single clip
    assert table.mean(axis=0).argmax() == B  # logits averaged
    assert _softmax(table[:5]).mean(axis=0).argmax() == C  # probabilities over 5 clips
    probs = _softmax(table).mean(axis=0)
    assert probs.argmax() == D
    top5 = [D, C, B, A, 0]  # then the tied remaining classes by ascending id: class 0 first
    assert sorted(np.argsort(-probs, kind="stable")[:5]) == sorted(top5)

    model = ClipTableModel(table)
    monkeypatch.setattr(RecognitionTask, "build_model", lambda self, cfg, meta, weights: model)
    monkeypatch.setattr(RecognitionTask, "train", lambda self, job, model, data: {})
    overrides = ["DATA.NUM_FRAMES", "4", "DATA.CROP", "16", "DATA.TEST_RESIZE", "16", "DATA.NUM_WORKERS", "0",
                 "TEST.BATCH_SIZE", "1", *flag_overrides(init="scratch")]  # DATA.TEST_CLIPS: the default
    plan = lifecycle.plan(TASKS["recognition"], "domain/ucf101", overrides)
    assert plan.cfg.DATA.TEST_CLIPS == 10
    record = lifecycle.run(plan, synthetic_root, tmp_path / "run", progress=False)
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    labels = [e.label for e in read_split("ucf101", synthetic_root, "test")]
    n, present = len(labels), sorted(set(labels))
    assert n == 10 and labels.count(D) == 2 and A not in labels and B not in labels and C not in labels
    assert written["metrics"]["video_top1"] == pytest.approx(labels.count(D) / n)  # 0.2
    assert written["metrics"]["video_top5"] == pytest.approx(sum(label in top5 for label in labels) / n)  # 0.4
    assert written["metrics"]["mean_class_accuracy"] == pytest.approx(1 / len(present))  # class D right, others wrong
    assert written["primary"] == {"metric": "video_top1", "value": pytest.approx(20.0), "higher_is_better": True}
    assert record["metrics"] == written["metrics"]


# ------------------------------------------------------------------------------------------- subsets

def test_training_subset_is_drawn_from_the_full_official_list(synthetic_root, tmp_path):
    task = TASKS["recognition"]
    roots = {name: tmp_path / name for name in ("complete", "incomplete")}
    for root in roots.values():
        shutil.copytree(synthetic_root / "ucf101", root / "ucf101")
    official = read_split("ucf101", roots["complete"], "train")
    # remove the first video of every class from the incomplete root
    removed = {next(e for e in official if e.label == c).key for c in {e.label for e in official}}
    for key in removed:
        (roots["incomplete"] / "ucf101" / "UCF-101" / key.split("UCF-101/", 1)[1]).unlink()

    def subset(root: Path) -> tuple[list, list]:
        cfg = lifecycle.load_task_config(task, "samples/ucf101_1000", ["DATA.NUM_EXAMPLES", "10",
                                                                       "DATA.ALLOW_MISSING", "True"])
        run_dir = root / "run"
        run_dir.mkdir()
        job = lifecycle.Job(cfg, "scratch", dict(SCRATCH_META), root, run_dir, DistContext(), progress=False)
        data = task.prepare(job)
        return read_subset_list(run_dir / "train_subset.txt"), [e.key for e in data.train.entries]

    full_list, full_train = subset(roots["complete"])
    partial_list, partial_train = subset(roots["incomplete"])
    # 10 examples over 5 classes of 3 videos: 2 per class, drawn among all 3 official entries of each class
    assert len(full_list) == 10 and partial_list == full_list
    assert removed & {key for key, _ in full_list}  # the subset holds videos the incomplete root lacks
    assert partial_train == [k for k in full_train if k not in removed] and len(partial_train) < len(full_train)


# ------------------------------------------------------------------------------------------- strict loading

def test_strict_loading_refuses_missing_keys():
    seed_everything(0)
    arch = "vit_tiny_videomae"  # the smallest registered backbone; every task builds through make_backbone
    state = build_backbone(arch).state_dict()
    meta = {"method": "videomae", "arch": arch}
    lost = "blocks.1.norm2.bias"
    assert lost in state
    partial = {k: v for k, v in state.items() if k != lost}
    with pytest.raises(SevereError, match=r"1 missing \(e\.g\. blocks\.1\.norm2\.bias\)"):
        lifecycle.make_backbone(arch, Converted(partial, meta, {}))
    extra = {**state, "head.weight": torch.zeros(2, 2)}
    with pytest.raises(SevereError, match=r"1 unexpected \(e\.g\. head\.weight\)"):
        lifecycle.make_backbone(arch, Converted(extra, meta, {}))
    loaded = lifecycle.make_backbone(arch, Converted(state, meta, {}))
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())


# ------------------------------------------------------------------------------------------- resume

RESUME_KEYS = ("seed", "epochs", "global_batch_size", "accum_steps", "world_size", "mode", "optimizer", "schedule")


def _trainer(run_dir: Path, **changes) -> Trainer:
    seed_everything(0)
    kwargs = dict(run_dir=run_dir, epochs=2, global_batch_size=8, optimizer=OptimizerSpec("adam"),
                  schedule=MultiStepLR(1e-2, [1], 0.3), seed=7, progress=False, console=False)
    kwargs.update(changes)
    return Trainer(TinyNet(), ToyTrain(), **kwargs)


def test_resume_refuses_every_checked_setting_that_differs(tmp_path):
    run = tmp_path / "run"
    first = _trainer(run)
    assert first.resume_keys == RESUME_KEYS  # a new checked key needs a case here
    first.fit(stop_after_epoch=0)
    ckpt_path = run / "checkpoint_last.pt"
    stored = load_checkpoint(ckpt_path)
    # the settings as a changed command line produces them
    for key, change in [("seed", {"seed": 8}), ("epochs", {"epochs": 3}), ("global_batch_size", {"global_batch_size": 4}),
                        ("accum_steps", {"accum_steps": 2}), ("optimizer", {"optimizer": OptimizerSpec("sgd")}),
                        ("schedule", {"schedule": MultiStepLR(1e-2, [2], 0.3)}),
                        ("schedule", {"schedule": MultiStepLR(1e-3, [1], 0.3)})]:
        with pytest.raises(SevereError, match=f"setting '{key}' was"):
            _trainer(run, **change).fit(resume=True)
    # every checked key, including those a single process cannot change (world size, mode): the stored value differs
    for key in RESUME_KEYS:
        other = {**stored, "setup": {**stored["setup"], key: ["not", "the", "value", "of", "this", "run"]}}
        save_checkpoint(ckpt_path, other)
        with pytest.raises(SevereError, match=f"setting '{key}' was"):
            _trainer(run).fit(resume=True)
    save_checkpoint(ckpt_path, stored)
    assert [h["epoch"] for h in _trainer(run).fit(resume=True)] == [0, 1]  # unchanged settings resume


# ------------------------------------------------------------------------------------------- gathering

def test_gathering_deduplicates_indices_repeated_across_ranks(monkeypatch):
    # rank 0 scored items 0, 1, 2; rank 1 items 2, 3, 0 (padding repeats items); values = 10 * index + rank
    shards = [(np.array([0, 1, 2]), {"v": np.array([0.0, 10.0, 20.0])}),
              (np.array([2, 3, 0]), {"v": np.array([21.0, 31.0, 1.0])})]

    def all_gather_object(parts, mine):
        assert np.array_equal(mine[0], shards[0][0])
        parts[:] = shards

    monkeypatch.setattr(distributed_module.dist, "all_gather_object", all_gather_object)
    ctx = DistContext(rank=0, world_size=2)
    arrays, order = gather_by_index(shards[0][1], shards[0][0], ctx, expected=4)
    assert order.tolist() == [0, 1, 2, 3]
    assert arrays["v"].tolist() == [0.0, 10.0, 20.0, 31.0]  # each index once, from its first occurrence


# ------------------------------------------------------------------------------------------- FineGym filters

# gym99 label ranges of the derived subsets (docs/protocol.md §7): first and last kept gym99 id
RANGES = {"gym_vault": (0, 5), "gym_floor": (6, 40), "gym_fx_s1": (6, 16), "gym_ub_s1": (74, 88)}


def test_finegym_filters_keep_exactly_their_label_range(tmp_path):
    ann = tmp_path / "gym" / "annotations"
    ann.mkdir(parents=True)
    lines = "".join(f"clip_{label:02d} {label}\n" for label in range(99))
    for split in ("train", "val"):
        (ann / f"gym99_{split}.txt").write_text(lines, encoding="utf-8")
    for dataset, (first, last) in RANGES.items():
        for split in ("train", "test"):
            entries = read_split(dataset, tmp_path, split)
            names = {e.key.split("/")[-1]: e.label for e in entries}
            assert f"clip_{first:02d}.avi" in names and f"clip_{last:02d}.avi" in names, dataset
            if first > 0:
                assert f"clip_{first - 1:02d}.avi" not in names, dataset
            assert f"clip_{last + 1:02d}.avi" not in names, dataset
            assert names == {f"clip_{g:02d}.avi": g - first for g in range(first, last + 1)}, dataset


# ------------------------------------------------------------------------------------------- AVA

class ColumnScoreDetector(nn.Module):
    """Score of class column j (label-map id j + 1) for every box: (j + 1) / 100."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.scores = torch.arange(1, num_classes + 1, dtype=torch.float32) / 100
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, clips: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(rois.shape[0], -1) + 0.0 * self.anchor


def test_ava_detections_map_columns_through_the_label_map_and_use_iou_half(synthetic_root, tmp_path, monkeypatch):
    ann = synthetic_root / "ava" / "annotations"
    labelmap_file = ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    class_ids = sorted(ava_metrics.read_labelmap(labelmap_file))
    assert class_ids != list(range(class_ids[0], class_ids[0] + len(class_ids)))  # non-contiguous ids
    seen_iou = []
    real = ava_metrics.frame_map
    default_iou = inspect.signature(real).parameters["iou"].default

    def spy(*args, **kwargs):
        seen_iou.append(kwargs.get("iou", args[4] if len(args) > 4 else default_iou))
        return real(*args, **kwargs)

    monkeypatch.setattr("severe.tasks.ava.frame_map", spy)
    monkeypatch.setattr(ava_metrics, "frame_map", spy)
    monkeypatch.setattr(AvaTask, "build_model", lambda self, cfg, meta, w: ColumnScoreDetector(cfg.MODEL.NUM_CLASSES))
    monkeypatch.setattr(AvaTask, "train", lambda self, job, model, data: {})
    cfg_file = SLOWFAST_CONFIGS / "AVA" / "TINY_SYNTHETIC.yaml"
    plan = lifecycle.plan(TASKS["ava"], cfg_file, ["DATA.NUM_FRAMES", "4", *flag_overrides(init="scratch")])
    lifecycle.run(plan, synthetic_root, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "detections.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows and {int(r[6]) for r in rows} == set(class_ids)
    for r in rows:
        assert float(r[7]) == pytest.approx(int(r[6]) / 100, abs=1e-6)  # column of class id c = c - 1
    # the runner scored at IoU 0.5, and its mAP is the reference evaluator's on the file it wrote
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    expected = ava_metrics.frame_map_reference(ava_metrics.read_boxes_csv(ann / "ava_val_v2.2.csv"),
                                               ava_metrics.read_boxes_csv(tmp_path / "run" / "detections.csv",
                                                                          require_score=True),
                                               class_ids, ava_metrics.read_exclusions(ann / "ava_val_excluded_timestamps_v2.2.csv"),
                                               iou=0.5)
    assert results["metrics"]["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    assert seen_iou == [0.5]
    # severe eval ava on the same files: the same threshold and number
    assert severe_main(["eval", "ava", "--groundtruth", str(ann / "ava_val_v2.2.csv"), "--detections",
                        str(tmp_path / "run" / "detections.csv"), "--labelmap", str(labelmap_file), "--exclusions",
                        str(ann / "ava_val_excluded_timestamps_v2.2.csv"), "--json"]) == 0
    assert seen_iou == [0.5, 0.5]
