"""One Charades v1 multi-label experiment (tasks.md §2): config -> data -> model -> train -> 30-view test -> results.

Run directory (OUTPUT_DIR, default ``runs/charades/<method>/seed<RNG_SEED>``): config.yaml, init.json,
metrics.jsonl, train.log, checkpoint_last.pt (+ checkpoint_eNNN.pt every TRAIN.CHECKPOINT_PERIOD
epochs), results.json (retest.json for a later test-only run).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from severe.config import to_plain
from severe.data.readers.charades import FRAME_DIR, frame_list_path, read_charades_frame_list
from severe.data.registry import get_dataset
from severe.data.transforms import Normalization
from severe.detection.frames import FrameVideos
from severe.engine import DistContext, StepOutput, init_distributed, per_process_batch, predict_dense, seed_everything
from severe.engine.precise_bn import PreciseBN
from severe.engine.trainer import Trainer
from severe.errors import SevereError
from severe.io import atomic_write_json
from severe.models import VideoClassifier
from severe.multilabel.data import CharadesDataset
from severe.multilabel.model import build_multilabel_model
from severe.results import make_results, results_target
from severe.slowfast_config import (
    start_task_run,
    InitPlan,
    load_trained_weights,
    solver_from_config,
    task_data_dir,
)

log = logging.getLogger("severe.multilabel")


def multilabel_step(model: torch.nn.Module, batch, device: torch.device, memory_format: torch.memory_format) -> StepOutput:
    """BCEWithLogits (mean over items x classes) against multi-hot targets."""
    clips, targets = batch[0], batch[1]
    logits = model(clips.to(device, non_blocking=True).contiguous(memory_format=memory_format))
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.to(device, non_blocking=True))
    return StepOutput(loss, clips.shape[0])


# ------------------------------------------------------------------------------------------- pieces

def _norm(cfg: CfgNode, meta: dict) -> Normalization:
    return Normalization.from_meta(meta, list(cfg.DATA.MEAN), list(cfg.DATA.STD))


def _dataset(cfg: CfgNode, charades_dir: Path, split: str, meta: dict) -> CharadesDataset:
    path = frame_list_path(charades_dir, split)
    videos = read_charades_frame_list(path, cfg.MODEL.NUM_CLASSES)
    if not videos:
        raise SevereError(f"{path}: no video listed")
    spec = get_dataset("charades")
    frames = FrameVideos(charades_dir / FRAME_DIR, videos, spec.frames_fps, spec.frame_pattern, source=str(path))
    frames.check_present()
    d, t = cfg.DATA, cfg.TEST
    return CharadesDataset(videos, frames, train=split == "train", num_frames=d.NUM_FRAMES,
                           sampling_rate=d.SAMPLING_RATE, norm=_norm(cfg, meta), seed=cfg.RNG_SEED,
                           num_classes=cfg.MODEL.NUM_CLASSES, crop_size=d.TRAIN_CROP_SIZE,
                           jitter=tuple(d.TRAIN_JITTER_SCALES), inverse_jitter=d.INV_UNIFORM_SAMPLE,
                           test_size=d.TEST_CROP_SIZE, ensemble_views=t.NUM_ENSEMBLE_VIEWS,
                           spatial_crops=t.NUM_SPATIAL_CROPS)


def _model(cfg: CfgNode, arch: str, weights=None) -> VideoClassifier:
    return build_multilabel_model(arch, weights, num_classes=cfg.MODEL.NUM_CLASSES, dropout=cfg.MODEL.DROPOUT_RATE)


def train(cfg: CfgNode, init: InitPlan, charades_dir: Path, run_dir: Path, ctx: DistContext, resume: bool,
          progress: bool) -> tuple[VideoClassifier, dict]:
    """Train for SOLVER.MAX_EPOCH epochs (precise BN at checkpoint epochs and the last); returns the model."""
    dataset = _dataset(cfg, charades_dir, "train", init.meta)
    seed_everything(cfg.RNG_SEED)
    model = _model(cfg, init.meta["arch"], init.weights)
    optimizer, schedule = solver_from_config(cfg)
    precise = None
    if cfg.BN.USE_PRECISE_STATS:
        precise = PreciseBN(dataset, batch_size=per_process_batch(cfg.TRAIN.BATCH_SIZE, ctx.world_size),
                            num_batches=cfg.BN.NUM_BATCHES_PRECISE, period=cfg.TRAIN.CHECKPOINT_PERIOD,
                            epochs=cfg.SOLVER.MAX_EPOCH, seed=cfg.RNG_SEED, num_workers=cfg.DATA_LOADER.NUM_WORKERS,
                            device=ctx.device)
    trainer = Trainer(model, dataset, run_dir=run_dir, epochs=cfg.SOLVER.MAX_EPOCH,
                      global_batch_size=cfg.TRAIN.BATCH_SIZE, optimizer=optimizer, schedule=schedule,
                      seed=cfg.RNG_SEED, step_fn=multilabel_step, num_workers=cfg.DATA_LOADER.NUM_WORKERS, dist=ctx,
                      progress=progress, checkpoint_every=cfg.TRAIN.CHECKPOINT_PERIOD, val_fn=precise)
    history = trainer.fit(resume=resume)
    record = {"epochs": len(history), "final_train_loss": history[-1].get("train_loss") if history else None,
              "videos": len(dataset), "runtime": trainer.runtime.record}
    return model, record


def evaluate(model: VideoClassifier, cfg: CfgNode, charades_dir: Path, meta: dict, ctx: DistContext,
             progress: bool = True) -> tuple[dict, dict]:
    """30-view test (max of sigmoid scores per video) and Charades mAP (classes with positives)."""
    from severe.metrics.charades import charades_map

    dataset = _dataset(cfg, charades_dir, "test", meta)
    out = predict_dense(model, dataset, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA_LOADER.NUM_WORKERS,
                        ctx=ctx, aggregate="sigmoid_max", progress=progress)
    labels = np.asarray(out.labels, dtype=np.float32)
    value = charades_map(out.values, labels)
    counts = {"test_videos": int(len(labels)), "classes_with_positives": int((labels.sum(axis=0) > 0).sum()),
              "views_per_video": cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS}
    return {"mAP": float(value)}, counts


def _deviations(cfg: CfgNode, method: str) -> list[str]:
    out = [
        "reported model = last epoch (as the original); no per-epoch evaluation on the val (= test) set",
        "test label = union of all frame labels of the video (PySlowFast: union over the 30 views' spans; "
        "identical unless the views leave gaps, i.e. videos longer than ~9 clip spans)",
        "plain BatchNorm on one process group (the original yaml named sync-BN over 4 GPUs)",
    ]
    if method == "tclr":
        out.append("TCLR: its own layer4 and global pooling over its 8-step map")
    return out


def run(cfg: CfgNode, trust: bool = False, resume: bool = False, progress: bool = True) -> dict | None:
    """Train (TRAIN.ENABLE) and/or test (TEST.ENABLE) as the config says; returns the results record
    (None when only training, or on non-main ranks)."""
    charades_dir = task_data_dir(cfg, "charades")
    ctx = init_distributed()
    extra: dict = {}
    start = start_task_run(cfg, ctx.is_main, trust, resume)
    run_dir, meta, method = start.run_dir, start.meta, start.method
    if start.init is not None:
        model, extra["train"] = train(cfg, start.init, charades_dir, run_dir, ctx, start.resume, progress)
    else:
        model = _model(cfg, meta["arch"])
        load_trained_weights(model, run_dir, cfg.SOLVER.MAX_EPOCH)
    if not cfg.TEST.ENABLE:
        return None
    metrics, counts = evaluate(model, cfg, charades_dir, meta, ctx, progress)
    if not ctx.is_main:
        return None
    results = make_results(
        experiment_id="charades", task="charades", dataset="charades", factor="task", mode="finetune",
        init_method=method, metrics=metrics, primary_metric="mAP", primary_value=round(100.0 * metrics["mAP"], 4),
        higher_is_better=True, seed=cfg.RNG_SEED, config=to_plain(cfg), data=counts,
        deviations=_deviations(cfg, method), extra={"init": meta, **extra})
    atomic_write_json(results_target(run_dir), results)
    log.info("charades %s seed %d: mAP %.2f%% (%d videos) -> %s", method, cfg.RNG_SEED, results["primary"]["value"],
             counts["test_videos"], run_dir)
    return results
