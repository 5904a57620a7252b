"""One UCF-RC experiment, top to bottom: config -> data -> model -> state-machine training -> counting test
-> results.

Run directory (one per initialisation and seed):
  config.yaml          the resolved config, written once
  init.json            the initial weights' metadata (method, arch, input convention, source sha256)
  train_items.csv      the seeded training sub-segments (video, begin/end frame, count, uncut count)
  *_missing.txt        videos excluded for missing frames (only with DATA.ALLOW_MISSING)
  metrics.jsonl, train.log, checkpoint_last.pt (+ checkpoint_eNNN.pt weights)   training
  test_predictions.csv per test video: length, ground truth, prediction, period, valid positions
  results.json         the final record (severe.results); retest.json for a later re-test
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from severe.checkpoints.convert import Converted
from severe.checkpoints.weights import check_initialisation, SCRATCH_META, build_initialised_backbone, load_weights
from severe.config import load_config, to_plain, find_config as _find_config
from severe.configs import config_dir
from severe.data.registry import dataset_dir
from severe.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalization
from severe.engine import DistContext, gather_by_index, init_distributed, load_checkpoint, seed_everything, shard_range
from severe.engine.runtime import resolve_runtime
from severe.errors import SevereError
from severe.io import atomic_write_json, atomic_write_text
from severe.metrics.repetition import repetition_summary
from severe.models import build_backbone
from severe.repetition.config import repetition_defaults, validate
from severe.repetition.data import DATASET_ID, TestSegments, TrainSegments, check_frames, collate_list
from severe.repetition.inference import CountResult, InferenceSettings, ModelScorer, count_repetitions
from severe.repetition.inputs import InputBuilder
from severe.repetition.model import RepetitionCounter
from severe.repetition.segments import RepVideo, draw_train_items, item_summary, items_table, load_videos
from severe.repetition.training import LAST_CHECKPOINT, RepetitionTrainer, StateMachine
from severe.results import RESULTS_FILE, make_results, prepare_run_dir, results_target, write_results

log = logging.getLogger("severe.repetition")

CONFIG_DIR = config_dir("repetition")
CONFIG_FILE, INIT_FILE, ITEMS_FILE, PREDICTIONS_FILE = "config.yaml", "init.json", "train_items.csv", "test_predictions.csv"
TASK, FACTOR = "repetition_counting", "task"


def find_config(name: str | Path) -> Path:
    """A config path, or a name under Deep-Temporal-Repetition-Counting/configs (``ucfrep`` or ``ucfrep.yaml``)."""
    return _find_config(name, CONFIG_DIR)


@dataclass
class Plan:
    cfg: CfgNode
    method: str
    weights: Converted | None


def plan_run(config: str | Path, init: str, weights: str | Path | None, overrides: list[str] = (),
             trust: bool = False) -> Plan:
    """Resolve the config (defaults <- file <- overrides) and the initial weights."""
    path = find_config(config)
    method = check_initialisation(init, weights)
    loaded = None if method == "scratch" else load_weights(weights, method=method, trust=trust)
    cfg = load_config(repetition_defaults(), path, list(overrides))
    validate(cfg)
    return Plan(cfg, method, loaded)


def default_run_dir(cfg: CfgNode, method: str) -> Path:
    return Path("runs") / cfg.EXPERIMENT.ID / method / f"seed{cfg.SEED}"


def init_meta(plan: Plan) -> dict:
    return dict(plan.weights.meta) if plan.weights is not None else dict(SCRATCH_META)


def normalization(meta: dict) -> Normalization:
    """UCF-RC's input convention: ImageNet statistics, unless the checkpoint's own convention says none
    (TCLR: no normalisation, BGR) — the same in training and testing."""
    return Normalization.from_meta(meta, IMAGENET_MEAN, IMAGENET_STD)


def build_model(cfg: CfgNode, weights: Converted | None, arch: str | None = None) -> RepetitionCounter:
    backbone = build_initialised_backbone(weights) if weights is not None else build_backbone(arch or SCRATCH_META["arch"])
    return RepetitionCounter(backbone, len(cfg.MODEL.ANCHORS), cfg.MODEL.STREAM_FEATURES)


def inference_settings(cfg: CfgNode) -> InferenceSettings:
    return InferenceSettings(anchors=tuple(cfg.MODEL.ANCHORS), num_scales=cfg.TEST.NUM_SCALES, min_scale=cfg.TEST.MIN_SCALE,
                             max_scale=cfg.TEST.MAX_SCALE, refine_iters=cfg.TEST.REFINE_ITERS,
                             merge_weight=cfg.TEST.MERGE_WEIGHT, box_clamp=cfg.TEST.BOX_CLAMP, min_cycles=cfg.TEST.MIN_CYCLES)


def state_machine(cfg: CfgNode) -> StateMachine:
    return StateMachine(anchors=tuple(cfg.MODEL.ANCHORS), iou_threshold=cfg.TRAIN.IOU_THRESHOLD, box_weight=cfg.TRAIN.BOX_WEIGHT,
                        box_clamp=cfg.TRAIN.BOX_CLAMP, step_divisor=tuple(cfg.TRAIN.STEP_DIVISOR),
                        max_inner_steps=cfg.TRAIN.MAX_INNER_STEPS, num_scales=cfg.TEST.NUM_SCALES,
                        min_scale=cfg.TEST.MIN_SCALE, max_scale=cfg.TEST.MAX_SCALE)


# ------------------------------------------------------------------------------------------- data

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
                          f"(first: {bad[0][1]}); extract them (datasets.md §12) or set DATA.ALLOW_MISSING True to "
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


# ------------------------------------------------------------------------------------------- run

def run(plan: Plan, data_root: Path, run_dir: Path, resume: bool = False, progress: bool = True,
        stop_after_epoch: int | None = None) -> dict | None:
    """Train and test one experiment; returns the results record (None when stopped early for tests)."""
    cfg, ctx = plan.cfg, init_distributed()
    run_dir, data_root = Path(run_dir), Path(data_root)
    meta = init_meta(plan)
    if ctx.is_main:
        prepare_run_dir(run_dir, resume=resume)
        _write_or_check_config(run_dir, cfg)
        atomic_write_json(run_dir / INIT_FILE, meta)
    resume = resume and (run_dir / LAST_CHECKPOINT).exists()
    seed_everything(cfg.SEED)
    norm = normalization(meta)
    train = prepare_videos(data_root, "train", cfg.DATA.ALLOW_MISSING, run_dir if ctx.is_main else None)
    test = prepare_videos(data_root, "test", cfg.DATA.ALLOW_MISSING, run_dir if ctx.is_main else None)
    items = draw_train_items(train.videos, cfg.DATA.ITEMS_PER_VIDEO, cfg.DATA.MAX_SEGMENT_FRAMES, cfg.SEED,
                             cfg.DATA.CORRECT_CAPPED_COUNT)
    table = items_table(train.videos, items)
    if ctx.is_main:
        atomic_write_text(run_dir / ITEMS_FILE, table)
    folder = dataset_dir(data_root, DATASET_ID)
    model = build_model(cfg, plan.weights, meta["arch"])
    builder = InputBuilder(norm, cfg.MODEL.FRAMES_PER_STREAM)
    train_ds = TrainSegments(folder, train.videos, items, size=cfg.DATA.CROP, seed=cfg.SEED, flip=cfg.DATA.FLIP)
    trainer = RepetitionTrainer(
        model, train_ds, run_dir=run_dir, builder=builder, machine=state_machine(cfg), epochs=cfg.TRAIN.EPOCHS,
        batch_size=cfg.TRAIN.BATCH_SIZE, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY, seed=cfg.SEED,
        max_batches=cfg.TRAIN.MAX_BATCHES, num_workers=cfg.DATA.NUM_WORKERS, dist=ctx, amp=cfg.TRAIN.AMP,
        checkpoint_every=cfg.TRAIN.CHECKPOINT_EVERY, progress=progress,
        items_sha256=hashlib.sha256(table.encode("utf-8")).hexdigest(),
    )
    history = trainer.fit(resume=resume, stop_after_epoch=stop_after_epoch)
    if not history or history[-1]["epoch"] + 1 < cfg.TRAIN.EPOCHS:
        return None
    metrics, per_video = evaluate(trainer.model, cfg, folder, test.videos, norm, ctx, progress)
    extra = {"init": meta, "train": {"epochs": len(history), "final": {k: history[-1][k] for k in (
        "train_loss", "train_loss_cls", "train_loss_box", "train_mae", "train_obo", "inner_steps_mean")},
        "decode_failures": sum(r["decode_failures"] for r in history), "items": item_summary(items),
        "runtime": trainer.runtime.record}}
    results = _results(plan.method, cfg, metrics, {"train": train.record(), "test": test.record()}, extra,
                       _deviations(cfg, train, test, item_summary(items)))
    if ctx.is_main:
        _write_predictions(run_dir / PREDICTIONS_FILE, test.videos, per_video)
        write_results(run_dir, results)
        log.info("%s %s: MAE %.3f, OBO %.3f (%d test videos) -> %s", cfg.EXPERIMENT.ID, plan.method, metrics["mae"],
                 metrics["obo"], metrics["num_videos"], run_dir / RESULTS_FILE)
    return results


def _write_or_check_config(run_dir: Path, cfg: CfgNode) -> None:
    text = yaml.safe_dump(to_plain(cfg), sort_keys=True)
    path = run_dir / CONFIG_FILE
    if path.exists():
        if path.read_text(encoding="utf-8") != text:
            raise SevereError(f"{path} differs from the config of this command; resume with the same config and "
                              f"overrides, or choose another output directory")
        return
    atomic_write_text(path, text)


# ------------------------------------------------------------------------------------------- test

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


def evaluate(model: torch.nn.Module, cfg: CfgNode, folder: Path, videos: list[RepVideo], norm: Normalization,
             ctx: DistContext, progress: bool = True) -> tuple[dict, list[CountResult]]:
    """(metrics, per-video results): MAE/OBO (fractions) and the logged extras over the test videos."""
    results = predict_counts(model, cfg, folder, videos, norm, ctx, progress)
    metrics = repetition_summary([r.count for r in results], [v.count for v in videos])
    metrics["fallback_videos"] = int(sum(r.fallback for r in results))
    return metrics, results


def _write_predictions(path: Path, videos: list[RepVideo], results: list[CountResult]) -> None:
    lines = ["video,length,gt_count,pred_count,period,valid_positions"]
    lines += [f"{v.video},{v.length},{v.count},{r.count},{r.period},{r.valid_positions}" for v, r in zip(videos, results)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _deviations(cfg: CfgNode, train: SplitVideos, test: SplitVideos, items: dict) -> list[str]:
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
    if cfg.DATA.CORRECT_CAPPED_COUNT:
        out.append(f"count of sub-segments cut to {cfg.DATA.MAX_SEGMENT_FRAMES} frames recomputed "
                   f"({items['count_corrected']} of {items['items']} items changed)")
    if cfg.MODEL.STREAM_FEATURES == "split":
        out.append("split-stream variant: left/right temporal halves of layer4 feed the two streams (SEVERE fed the "
                   "same pooled vector to both)")
    if train.missing or test.missing:
        out.append(f"{len(train.missing)} train and {len(test.missing)} test videos excluded for missing frames")
    if cfg.TRAIN.AMP != "off":
        out.append(f"mixed precision {cfg.TRAIN.AMP} (the original trained in fp32)")
    return out


def _results(method: str, cfg: CfgNode, metrics: dict, data: dict, extra: dict, deviations: list[str]) -> dict:
    return make_results(
        experiment_id=cfg.EXPERIMENT.ID, task=TASK, dataset=DATASET_ID, factor=FACTOR, mode="finetune",
        init_method=method, metrics=metrics, primary_metric="mae", primary_value=round(float(metrics["mae"]), 6),
        higher_is_better=False, seed=cfg.SEED, config=to_plain(cfg), data=data, deviations=deviations, extra=extra,
    )


# ------------------------------------------------------------------------------------------- test only

def retest_run(run_dir: Path, data_root: Path, progress: bool = True) -> dict:
    """Re-test a trained run directory: its own config, architecture and last-epoch weights only."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, INIT_FILE, LAST_CHECKPOINT):
        if not (run_dir / name).is_file():
            raise SevereError(f"{run_dir} is not a trained repetition-counting run directory: {name} is missing")
    cfg = load_config(repetition_defaults(), run_dir / CONFIG_FILE)
    validate(cfg)
    meta = json.loads((run_dir / INIT_FILE).read_text(encoding="utf-8"))
    ckpt = load_checkpoint(run_dir / LAST_CHECKPOINT)
    if ckpt["epoch"] + 1 != cfg.TRAIN.EPOCHS:
        raise SevereError(f"{run_dir}: training stopped after epoch {ckpt['epoch'] + 1} of {cfg.TRAIN.EPOCHS}; "
                          f"resume it first (same command with --resume)")
    model = build_model(cfg, None, meta["arch"])
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise SevereError(f"{run_dir / LAST_CHECKPOINT} does not fit the run's model: {str(e).splitlines()[0]}") from None
    ctx = init_distributed()
    model.to(ctx.device)
    test = prepare_videos(Path(data_root), "test", cfg.DATA.ALLOW_MISSING, None)
    metrics, per_video = evaluate(model, cfg, dataset_dir(Path(data_root), DATASET_ID), test.videos, normalization(meta),
                                  ctx, progress)
    record = _results(meta.get("method", "unknown"), cfg, metrics, {"test": test.record()}, {"init": meta}, [])
    if ctx.is_main:
        target = results_target(run_dir)
        atomic_write_json(target, record)
        if target.name == RESULTS_FILE:
            _write_predictions(run_dir / PREDICTIONS_FILE, test.videos, per_video)
    return record
