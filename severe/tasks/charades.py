"""Charades v1 multi-label classification (``SlowFast-ssl-vssl/``): backbone + linear head, BCE-with-logits,
10 clips x 3 crops at test (max of sigmoid scores), Charades mAP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from severe.data.readers.charades import FRAME_DIR, frame_list_path, read_charades_frame_list
from severe.data.registry import dataset_dir, get_dataset
from severe.data.transforms import Normalization
from severe.data.frames import FrameVideos
from severe.engine import StepOutput, per_process_batch, predict_dense
from severe.engine.precise_bn import PreciseBN
from severe.engine.trainer import Trainer
from severe.errors import SevereError
from severe.models import VideoClassifier, linear_head
from severe.multilabel.data import CharadesDataset
from severe.tasks import lifecycle
from severe.tasks.base import EntryPoint, Job
from severe.tasks.slowfast import CONFIG_DIR, SlowFastTask, raise_first, slowfast_defaults, solver_from_config, validate_common

CONFIGS = CONFIG_DIR / "Charades"


def charades_defaults() -> CfgNode:
    """Charades v1 multi-label schema; defaults = SEVERE's Charades setting."""
    c = slowfast_defaults("charades")
    c.TRAIN.BATCH_SIZE = 16
    c.TRAIN.CHECKPOINT_EVERY = 6
    c.TRAIN.EPOCHS = 57
    c.TEST.BATCH_SIZE = 1  # videos per forward pass (each holds NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS views)
    c.TEST.NUM_ENSEMBLE_VIEWS = 10  # temporal clips per test video
    c.TEST.NUM_SPATIAL_CROPS = 3  # 3 = left/centre/right (top/middle/bottom for portrait); 1 = centre
    c.DATA.SAMPLING_RATE = 8
    c.DATA.TRAIN_JITTER_SCALES = [256, 340]
    c.MODEL.NUM_CLASSES = 157
    c.TRAIN.LR = 0.0375
    c.SOLVER.STEPS = [0, 41, 49]
    c.SOLVER.LRS = [1.0, 0.1, 0.01]
    c.TRAIN.WEIGHT_DECAY = 1e-4
    c.SOLVER.WARMUP_EPOCHS = 4.0
    c.SOLVER.WARMUP_START_LR = 0.0001
    c.BN.USE_PRECISE_STATS = True  # recompute BN statistics at checkpoint epochs and the last epoch
    c.BN.NUM_BATCHES_PRECISE = 200
    c.SEED = 1
    return c


def multilabel_step(model: torch.nn.Module, batch, device: torch.device, memory_format: torch.memory_format) -> StepOutput:
    """BCEWithLogits (mean over items x classes) against multi-hot targets."""
    clips, targets = batch[0], batch[1]
    logits = model(clips.to(device, non_blocking=True).contiguous(memory_format=memory_format))
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.to(device, non_blocking=True))
    return StepOutput(loss, clips.shape[0])


def charades_dataset(cfg: CfgNode, charades_dir: Path, split: str, meta: dict) -> CharadesDataset:
    path = frame_list_path(charades_dir, split)
    videos = read_charades_frame_list(path, cfg.MODEL.NUM_CLASSES)
    if not videos:
        raise SevereError(f"{path}: no video listed")
    spec = get_dataset("charades")
    frames = FrameVideos(charades_dir / FRAME_DIR, videos, spec.frames_fps, spec.frame_pattern, source=str(path))
    frames.check_present()
    d, t = cfg.DATA, cfg.TEST
    return CharadesDataset(videos, frames, train=split == "train", num_frames=d.NUM_FRAMES,
                           sampling_rate=d.SAMPLING_RATE, norm=Normalization.from_meta(meta, list(d.MEAN), list(d.STD)),
                           seed=cfg.SEED, num_classes=cfg.MODEL.NUM_CLASSES, crop_size=d.TRAIN_CROP_SIZE,
                           jitter=tuple(d.TRAIN_JITTER_SCALES), inverse_jitter=d.INV_UNIFORM_SAMPLE,
                           test_size=d.TEST_CROP_SIZE, ensemble_views=t.NUM_ENSEMBLE_VIEWS,
                           spatial_crops=t.NUM_SPATIAL_CROPS)


class CharadesTask(SlowFastTask):
    name = "charades"
    dataset = "charades"
    description = "Charades multi-label classification (SlowFast-ssl-vssl/tools/run_net.py)"
    entry_points = {"charades": EntryPoint("severe.multilabel.cli", "main",
                                           "Charades multi-label classification (SlowFast-ssl-vssl/tools/run_net.py)")}

    def defaults(self) -> CfgNode:
        return charades_defaults()

    def validate(self, cfg: CfgNode) -> None:
        raise_first(validate_common(cfg, get_dataset("charades").num_classes, "charades") + [
            (cfg.TEST.NUM_ENSEMBLE_VIEWS >= 1, f"TEST.NUM_ENSEMBLE_VIEWS must be >= 1, got {cfg.TEST.NUM_ENSEMBLE_VIEWS}"),
            (cfg.TEST.NUM_SPATIAL_CROPS in (1, 3), f"TEST.NUM_SPATIAL_CROPS must be 1 (centre) or 3, got {cfg.TEST.NUM_SPATIAL_CROPS}"),
            (not cfg.BN.USE_PRECISE_STATS or cfg.BN.NUM_BATCHES_PRECISE > 0,
             f"BN.NUM_BATCHES_PRECISE must be positive, got {cfg.BN.NUM_BATCHES_PRECISE}"),
        ])

    def prepare(self, job: Job) -> CharadesDataset | None:
        return None if job.retest else charades_dataset(job.cfg, dataset_dir(job.data_root, "charades"), "train", job.meta)

    def build_model(self, cfg: CfgNode, meta: dict, weights) -> VideoClassifier:
        backbone = lifecycle.make_backbone(meta["arch"], weights)
        return VideoClassifier(backbone, linear_head(backbone.feature_dim, cfg.MODEL.NUM_CLASSES, dropout=cfg.MODEL.DROPOUT))

    def train_step(self, job: Job, data):
        return multilabel_step

    def train(self, job: Job, model, dataset: CharadesDataset) -> dict | None:
        """SGD recipe; precise BN at checkpoint epochs and the last epoch."""
        cfg, ctx = job.cfg, job.ctx
        optimizer, schedule = solver_from_config(cfg)
        precise = None
        if cfg.BN.USE_PRECISE_STATS:
            precise = PreciseBN(dataset, batch_size=per_process_batch(cfg.TRAIN.BATCH_SIZE, ctx.world_size),
                                num_batches=cfg.BN.NUM_BATCHES_PRECISE, period=cfg.TRAIN.CHECKPOINT_EVERY,
                                epochs=cfg.TRAIN.EPOCHS, seed=cfg.SEED, num_workers=cfg.DATA.NUM_WORKERS, device=ctx.device)
        trainer = Trainer(model, dataset, run_dir=job.run_dir, epochs=cfg.TRAIN.EPOCHS,
                          global_batch_size=cfg.TRAIN.BATCH_SIZE, optimizer=optimizer, schedule=schedule,
                          seed=cfg.SEED, step_fn=self.train_step(job, dataset), num_workers=cfg.DATA.NUM_WORKERS, dist=ctx,
                          progress=job.progress, checkpoint_every=cfg.TRAIN.CHECKPOINT_EVERY, val_fn=precise)
        history = trainer.fit(resume=job.resume)
        return {"train": {"epochs": len(history), "final_train_loss": history[-1].get("train_loss") if history else None,
                          "videos": len(dataset), "runtime": trainer.runtime.record}}

    def evaluate(self, job: Job, model, data) -> tuple[dict, dict]:
        """30-view test (max of sigmoid scores per video) and Charades mAP (classes with positives)."""
        from severe.metrics.charades import charades_map

        cfg = job.cfg
        dataset = charades_dataset(cfg, dataset_dir(job.data_root, "charades"), "test", job.meta)
        out = predict_dense(model, dataset, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS,
                            ctx=job.ctx, aggregate="sigmoid_max", progress=job.progress)
        labels = np.asarray(out.labels, dtype=np.float32)
        counts = {"test_videos": int(len(labels)), "classes_with_positives": int((labels.sum(axis=0) > 0).sum()),
                  "views_per_video": cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS}
        return {"mAP": float(charades_map(out.values, labels))}, counts

    def deviations(self, job: Job, data, counts: dict) -> list[str]:
        out = [
            "reported model = last epoch (as the original); no per-epoch evaluation on the val (= test) set",
            "plain BatchNorm on one process group (the original yaml named sync-BN over 4 GPUs)",
        ]
        if job.method == "tclr":
            out.append("TCLR: its own layer4 and global pooling over its 8-step map")
        return out
