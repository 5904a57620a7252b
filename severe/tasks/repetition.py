"""UCF101 repetition counting (``Deep-Temporal-Repetition-Counting/``): the context-aware, scale-insensitive
period estimator trained with its state machine on a pretrained backbone, counted on the test videos.

Run directory files besides the lifecycle's: train_items.csv (the seeded training sub-segments),
test_predictions.csv (per test video: length, ground truth, prediction, period, valid positions),
*_missing.txt (videos excluded for missing frames, DATA.ALLOW_MISSING), checkpoint_eNNN.pt weights.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from severe.configs import config_dir
from severe.data.registry import dataset_dir
from severe.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalization
from severe.engine import DistContext, gather_by_index, shard_range
from severe.engine.runtime import resolve_runtime
from severe.errors import SevereError
from severe.io import atomic_write_text
from severe.metrics.repetition import repetition_summary
from severe.repetition.config import repetition_defaults, validate
from severe.repetition.data import DATASET_ID, TestSegments, TrainSegments, check_frames, collate_list
from severe.repetition.inference import CountResult, InferenceSettings, ModelScorer, count_repetitions
from severe.repetition.inputs import InputBuilder
from severe.repetition.model import RepetitionCounter
from severe.repetition.segments import RepVideo, draw_train_items, item_summary, items_table, load_videos
from severe.repetition.training import RepetitionTrainer, StateMachine
from severe.tasks import lifecycle
from severe.tasks.base import EntryPoint, Job, Task

log = logging.getLogger("severe.repetition")

CONFIG_DIR = config_dir("repetition")
ITEMS_FILE, PREDICTIONS_FILE = "train_items.csv", "test_predictions.csv"


def normalization(meta: dict) -> Normalization:
    """UCF-RC's input convention: ImageNet statistics, unless the checkpoint's own convention says none
    (TCLR: no normalisation, BGR) — the same in training and testing."""
    return Normalization.from_meta(meta, IMAGENET_MEAN, IMAGENET_STD)


def inference_settings(cfg: CfgNode) -> InferenceSettings:
    return InferenceSettings(anchors=tuple(cfg.MODEL.ANCHORS), num_scales=cfg.TEST.NUM_SCALES, min_scale=cfg.TEST.MIN_SCALE,
                             max_scale=cfg.TEST.MAX_SCALE, refine_iters=cfg.TEST.REFINE_ITERS,
                             merge_weight=cfg.TEST.MERGE_WEIGHT, box_clamp=cfg.TEST.BOX_CLAMP, min_cycles=cfg.TEST.MIN_CYCLES)


def state_machine(cfg: CfgNode) -> StateMachine:
    """The per-batch training step: several optimiser steps that move the cycle-length states."""
    return StateMachine(anchors=tuple(cfg.MODEL.ANCHORS), iou_threshold=cfg.TRAIN.IOU_THRESHOLD, box_weight=cfg.TRAIN.BOX_WEIGHT,
                        box_clamp=cfg.TRAIN.BOX_CLAMP, step_divisor=tuple(cfg.TRAIN.STEP_DIVISOR),
                        max_inner_steps=cfg.TRAIN.MAX_INNER_STEPS, num_scales=cfg.TEST.NUM_SCALES,
                        min_scale=cfg.TEST.MIN_SCALE, max_scale=cfg.TEST.MAX_SCALE)


@dataclass
class SplitVideos:
    videos: list[RepVideo]
    skipped: list[str]  # count < 2 (as the original)
    missing: list[str]  # frames missing (DATA.ALLOW_MISSING)
    notes: list[str]

    def record(self) -> dict:
        return {"videos": len(self.videos), "skipped_count_below_2": self.skipped, "missing": len(self.missing),
                "annotation_notes": self.notes[:20]}


def prepare_videos(data_root: Path, split: str, allow_missing: bool, run_dir: Path | None) -> SplitVideos:
    folder = dataset_dir(data_root, DATASET_ID)
    if not folder.is_dir():
        raise SevereError(f"dataset folder {folder} for {DATASET_ID} does not exist under the data root")
    videos, skipped, notes = load_videos(folder, split)
    bad = check_frames(folder, videos)
    if bad and not allow_missing:
        raise SevereError(f"{DATASET_ID} {split}: frames of {len(bad)} of {len(videos)} videos are missing or incomplete "
                          f"(first: {bad[0][1]}); extract them (docs/datasets.md §12) or set DATA.ALLOW_MISSING True to "
                          f"exclude them (recorded with the results)")
    missing = [v.key for v, _ in bad]
    if missing and run_dir is not None:
        atomic_write_text(run_dir / f"{split}_missing.txt", "".join(f"{k}\n" for k in missing))
        log.warning("%s %s: %d videos without complete frames excluded (listed in %s_missing.txt)",
                    DATASET_ID, split, len(missing), split)
    kept = [v for v in videos if v.key not in set(missing)]
    if not kept:
        raise SevereError(f"{DATASET_ID} {split}: no video left after excluding missing frames")
    for note in notes:
        log.warning("%s", note)
    return SplitVideos(kept, skipped, missing, notes)


def predict_counts(model: torch.nn.Module, cfg: CfgNode, folder: Path, videos: list[RepVideo], norm: Normalization,
                   ctx: DistContext, progress: bool = True) -> list[CountResult]:
    """Counting procedure on every test video (sharded over processes, gathered in video order)."""
    model.eval()
    builder = InputBuilder(norm, cfg.MODEL.FRAMES_PER_STREAM)
    settings = inference_settings(cfg)
    runtime = resolve_runtime(ctx.device, cfg.TRAIN.AMP)
    ds = TestSegments(folder, videos, size=cfg.DATA.CROP)
    shard = list(shard_range(len(ds), ctx.rank, ctx.world_size, block=cfg.TEST.BATCH_SIZE))
    loader = DataLoader(Subset(ds, shard), batch_size=cfg.TEST.BATCH_SIZE, shuffle=False,
                        num_workers=cfg.DATA.NUM_WORKERS, collate_fn=collate_list)
    rows, indices = [], []
    with torch.no_grad():
        for batch in tqdm(loader, desc="test", leave=False, disable=not (progress and ctx.is_main)):
            scorer = ModelScorer(model, builder, [b["frames"] for b in batch], ctx.device,
                                 runtime.autocast if runtime.amp_dtype is not None else None)
            for b, r in zip(batch, count_repetitions(scorer, [b["length"] for b in batch], settings)):
                rows.append([r.count, r.period, r.valid_positions, r.rate])
                indices.append(b["index"])
    arrays = {"rows": np.asarray(rows, dtype=np.float64).reshape(-1, 4)} if rows else {}
    gathered, _ = gather_by_index(arrays, np.asarray(indices, dtype=np.int64), ctx, expected=len(ds))
    return [CountResult(int(c), int(p), int(v), float(rate)) for c, p, v, rate in gathered["rows"]]


def _write_predictions(path: Path, videos: list[RepVideo], results: list[CountResult]) -> None:
    lines = ["video,length,gt_count,pred_count,period,valid_positions"]
    lines += [f"{v.video},{v.length},{v.count},{r.count},{r.period},{r.valid_positions}" for v, r in zip(videos, results)]
    atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass
class RepetitionData:
    train: SplitVideos | None  # None when re-testing
    test: SplitVideos
    items: list
    table: str
    norm: Normalization


class RepetitionTask(Task):
    name = "repetition"
    description = "UCF101 repetition counting (Deep-Temporal-Repetition-Counting/train.py)"
    primary_metric = "mae"
    higher_is_better = False
    percent = False  # the error as a fraction
    config_dir = CONFIG_DIR
    entry_points = {
        "repetition": EntryPoint("severe.repetition.cli", "train_main",
                                 "UCF101 repetition counting (Deep-Temporal-Repetition-Counting/train.py)"),
        "repetition-test": EntryPoint("severe.repetition.cli", "test_main",
                                      "re-test a trained repetition-counting run directory"),
    }

    def defaults(self) -> CfgNode:
        return repetition_defaults()

    def validate(self, cfg: CfgNode) -> None:
        validate(cfg)

    def identity(self, cfg: CfgNode) -> dict:
        return {"experiment_id": cfg.EXPERIMENT.ID, "task": "repetition_counting", "dataset": DATASET_ID,
                "factor": "task", "mode": "finetune"}

    def prepare(self, job: Job) -> RepetitionData:
        cfg, out = job.cfg, (None if job.retest else job.out)
        norm = normalization(job.meta)
        train = None if job.retest else prepare_videos(job.data_root, "train", cfg.DATA.ALLOW_MISSING, out)
        test = prepare_videos(job.data_root, "test", cfg.DATA.ALLOW_MISSING, out)
        items, table = [], ""
        if train is not None:
            items = draw_train_items(train.videos, cfg.DATA.ITEMS_PER_VIDEO, cfg.DATA.MAX_SEGMENT_FRAMES, cfg.SEED,
                                     cfg.DATA.CORRECT_CAPPED_COUNT)
            table = items_table(train.videos, items)
            if out is not None:
                atomic_write_text(out / ITEMS_FILE, table)
        return RepetitionData(train, test, items, table, norm)

    def build_model(self, cfg: CfgNode, meta: dict, weights) -> RepetitionCounter:
        return RepetitionCounter(lifecycle.make_backbone(meta["arch"], weights), len(cfg.MODEL.ANCHORS),
                                 cfg.MODEL.STREAM_FEATURES)

    def train_step(self, job: Job, data: RepetitionData) -> StateMachine:
        """Several optimiser steps per batch: the state machine moves the cycle-length states."""
        return state_machine(job.cfg)

    def train(self, job: Job, model, data: RepetitionData) -> dict | None:
        cfg = job.cfg
        folder = dataset_dir(job.data_root, DATASET_ID)
        builder = InputBuilder(data.norm, cfg.MODEL.FRAMES_PER_STREAM)
        train_ds = TrainSegments(folder, data.train.videos, data.items, size=cfg.DATA.CROP, seed=cfg.SEED,
                                 flip=cfg.DATA.FLIP)
        trainer = RepetitionTrainer(
            model, train_ds, run_dir=job.run_dir, builder=builder, machine=self.train_step(job, data), epochs=cfg.TRAIN.EPOCHS,
            batch_size=cfg.TRAIN.BATCH_SIZE, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY, seed=cfg.SEED,
            max_batches=cfg.TRAIN.MAX_BATCHES, num_workers=cfg.DATA.NUM_WORKERS, dist=job.ctx, amp=cfg.TRAIN.AMP,
            checkpoint_every=cfg.TRAIN.CHECKPOINT_EVERY, progress=job.progress,
            items_sha256=hashlib.sha256(data.table.encode("utf-8")).hexdigest(),
        )
        history = trainer.fit(resume=job.resume, stop_after_epoch=job.stop_after_epoch)
        if not history or history[-1]["epoch"] + 1 < cfg.TRAIN.EPOCHS:
            return None
        return {"train": {"epochs": len(history), "final": {k: history[-1][k] for k in (
            "train_loss", "train_loss_cls", "train_loss_box", "train_mae", "train_obo", "inner_steps_mean")},
            "decode_failures": sum(r["decode_failures"] for r in history), "items": item_summary(data.items),
            "runtime": trainer.runtime.record}}

    def evaluate(self, job: Job, model, data: RepetitionData) -> tuple[dict, dict]:
        """MAE/OBO (fractions) and the logged extras over the test videos; writes test_predictions.csv."""
        folder = dataset_dir(job.data_root, DATASET_ID)
        results = predict_counts(model, job.cfg, folder, data.test.videos, data.norm, job.ctx, job.progress)
        metrics = repetition_summary([r.count for r in results], [v.count for v in data.test.videos])
        metrics["fallback_videos"] = int(sum(r.fallback for r in results))
        if job.ctx.is_main and job.first_record:
            _write_predictions(job.run_dir / PREDICTIONS_FILE, data.test.videos, results)
        return metrics, {}

    def data_record(self, data: RepetitionData, counts: dict) -> dict:
        return {**({"train": data.train.record()} if data.train is not None else {}), "test": data.test.record()}

    def deviations(self, job: Job, data: RepetitionData, counts: dict) -> list[str]:
        if job.retest:
            return []
        cfg = job.cfg
        out = [
            "reported model = last epoch (the original kept the best epoch on the val split, which is the test split)",
            "training sub-segments drawn with a seeded generator and recorded in train_items.csv (the original: unseeded)",
            "initial-state scale drawn from 0..29 (the original drew 0..30 for a 30-entry grid)",
            "out-of-segment input frames = the ImageNet mean colour passed through the input transform (the original "
            "filled raw mean values that skipped normalisation)",
            "the checkpoint's input convention is applied identically in training and testing (the original skipped "
            "TCLR's convention in training only)",
            "resume continues at the next epoch with the full state (the original restarted the saved epoch)",
        ]
        if job.method == "tclr":
            out.append("TCLR: its checkpoint's input convention (no normalisation, BGR channel order) in training and "
                       "testing; the original repetition code fed TCLR RGB frames (docs/differences.md §30)")
        if cfg.DATA.CORRECT_CAPPED_COUNT:
            items = item_summary(data.items)
            out.append(f"count of sub-segments cut to {cfg.DATA.MAX_SEGMENT_FRAMES} frames recomputed "
                       f"({items['count_corrected']} of {items['items']} items changed)")
        if cfg.MODEL.STREAM_FEATURES == "split":
            out.append("split-stream variant: left/right temporal halves of layer4 feed the two streams (SEVERE fed the "
                       "same pooled vector to both)")
        if data.train.missing or data.test.missing:
            out.append(f"{len(data.train.missing)} train and {len(data.test.missing)} test videos excluded for missing frames")
        if cfg.TRAIN.AMP != "off":
            out.append(f"mixed precision {cfg.TRAIN.AMP} (the original trained in fp32)")
        return out

    def summary(self, record: dict) -> dict:
        return {"mae": record["metrics"]["mae"], "obo": record["metrics"]["obo"]}
