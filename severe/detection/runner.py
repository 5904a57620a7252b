"""One AVA v2.2 detection experiment (tasks.md §1): config -> data -> model -> train -> test -> results.

Run directory (OUTPUT_DIR, default ``runs/ava/<method>/seed<RNG_SEED>``):
  config.yaml        the resolved config, written once (a resumed run must match it)
  init.json          the initial weights' metadata (method, arch, input convention, source sha256)
  metrics.jsonl, train.log, checkpoint_last.pt     written by the engine
  detections.csv     every test box x every label-map class: video,%04d second,x1,y1,x2,y2,class,score
                     (original normalised detector box, sigmoid score); evaluated by frame-mAP@0.5
  results.json       the final record (severe.results); retest.json for a later test-only run
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from tqdm import tqdm

from severe.config import to_plain
from severe.data.readers.ava import ANNOTATION_DIR
from severe.data.registry import get_dataset
from severe.data.transforms import Normalization
from severe.detection.data import (
    FRAMES_DIR,
    AvaDataset,
    AvaSplit,
    batch_rois,
    collate_list,
    collate_train,
    load_ava_split,
)
from severe.detection.frames import FrameVideos
from severe.detection.model import DetectionModel, build_detection_model
from severe.engine import (
    DistContext,
    StepOutput,
    build_eval_loader,
    gather_by_index,
    init_distributed,
    seed_everything,
    unwrap_model,
)
from severe.engine.trainer import Trainer
from severe.errors import SevereError
from severe.io import atomic_write_json
from severe.metrics.ava import AvaRows, frame_map, read_boxes_csv, read_exclusions, read_labelmap, write_boxes_csv
from severe.results import RETEST_FILE, make_results, results_target
from severe.slowfast_config import (
    start_task_run,
    InitPlan,
    load_trained_weights,
    solver_from_config,
    task_data_dir,
)

log = logging.getLogger("severe.detection")

DETECTIONS_FILE, RETEST_DETECTIONS_FILE = "detections.csv", "retest_detections.csv"


# ------------------------------------------------------------------------------------------- pieces

def detection_step(model: torch.nn.Module, batch, device: torch.device, memory_format: torch.memory_format) -> StepOutput:
    """BCE (mean over boxes x classes) of the sigmoid outputs against multi-hot box targets."""
    clips, rois, targets = batch[0], batch[1], batch[2]
    clips = clips.to(device, non_blocking=True).contiguous(memory_format=memory_format)
    probs = model(clips, rois.to(device, non_blocking=True))
    loss = F.binary_cross_entropy(probs.float(), targets.to(device, non_blocking=True))
    return StepOutput(loss, clips.shape[0])


def predict_boxes(model: DetectionModel, dataset: AvaDataset, *, batch_size: int, num_workers: int = 0,
                  ctx: DistContext | None = None, progress: bool = True) -> np.ndarray:
    """Sigmoid scores [num_boxes, C] of every test box, in dataset box order (gathered over ranks).

    A batch holds ``batch_size`` keyframes; keyframes whose frames differ in size run as separate forwards.
    """
    ctx = ctx or DistContext()
    net = unwrap_model(model).to(ctx.device).eval()
    loader = build_eval_loader(dataset, batch_size, ctx, num_workers=num_workers, collate_fn=collate_list)
    scores, indices = [], []
    with torch.inference_mode():
        for items in tqdm(loader, desc="test", leave=False, disable=not (progress and ctx.is_main)):
            groups: dict[tuple[int, ...], list] = {}
            for item in items:
                groups.setdefault(tuple(item[0].shape), []).append(item)
            for group in groups.values():
                clips = torch.stack([it[0] for it in group]).to(ctx.device)
                rois = batch_rois([it[1] for it in group]).to(ctx.device)
                scores.append(net(clips, rois).float().cpu().numpy())
                indices += [np.arange(dataset.box_offsets[it[2]], dataset.box_offsets[it[2] + 1]) for it in group]
    local = {"scores": np.concatenate(scores)} if scores else {}
    arrays, _ = gather_by_index(local, np.concatenate(indices) if indices else np.zeros(0, np.int64), ctx,
                                expected=dataset.num_boxes)
    return arrays["scores"]


def detection_rows(split: AvaSplit, scores: np.ndarray, class_ids: list[int]) -> AvaRows:
    """One row per (test box, label-map class) in keyframe, box, class order (tasks.md §1.4)."""
    cols = np.asarray(class_ids, dtype=np.int64) - 1
    videos, seconds, boxes = [], [], []
    for kf in split.keyframes:
        n = len(kf.boxes)
        videos += [kf.video_id] * (n * len(cols))
        seconds += [kf.second] * (n * len(cols))
        boxes.append(np.repeat(kf.boxes, len(cols), axis=0))
    return AvaRows.from_columns(videos, seconds, np.concatenate(boxes), np.tile(class_ids, len(scores)),
                                scores[:, cols].astype(np.float64).reshape(-1))


# ------------------------------------------------------------------------------------------- run

def _frames(ava_dir: Path, split: AvaSplit, source: str) -> FrameVideos:
    spec = get_dataset("ava")
    frames = FrameVideos(ava_dir / FRAMES_DIR, split.videos.values(), spec.frames_fps, spec.frame_pattern, source=source)
    frames.check_present({k.video_id for k in split.keyframes})
    return frames


def _norm(cfg: CfgNode, meta: dict) -> Normalization:
    return Normalization.from_meta(meta, list(cfg.DATA.MEAN), list(cfg.DATA.STD))


def _train_split(cfg: CfgNode, ava_dir: Path) -> AvaSplit:
    return load_ava_split(ava_dir, frame_lists=cfg.AVA.TRAIN_LISTS, gt_files=cfg.AVA.TRAIN_GT_BOX_LISTS,
                          detection_files=cfg.AVA.TRAIN_PREDICT_BOX_LISTS, score_threshold=cfg.AVA.DETECTION_SCORE_THRESH)


def _test_split(cfg: CfgNode, ava_dir: Path) -> AvaSplit:
    return load_ava_split(ava_dir, frame_lists=cfg.AVA.TEST_LISTS, gt_files=[],
                          detection_files=cfg.AVA.TEST_PREDICT_BOX_LISTS, score_threshold=cfg.AVA.DETECTION_SCORE_THRESH)


def _model(cfg: CfgNode, arch: str, weights=None) -> DetectionModel:
    return build_detection_model(arch, weights, num_classes=cfg.MODEL.NUM_CLASSES,
                                 resolution=cfg.DETECTION.ROI_XFORM_RESOLUTION,
                                 spatial_scale_factor=cfg.DETECTION.SPATIAL_SCALE_FACTOR, dropout=cfg.MODEL.DROPOUT_RATE)


def train(cfg: CfgNode, init: InitPlan, ava_dir: Path, run_dir: Path, ctx: DistContext, resume: bool,
          progress: bool) -> tuple[DetectionModel, dict]:
    """Train the detector for SOLVER.MAX_EPOCH epochs (last epoch kept); returns it and a training record."""
    split = _train_split(cfg, ava_dir)
    seed_everything(cfg.RNG_SEED)  # scratch backbones and the head draw their init from this
    model = _model(cfg, init.meta["arch"], init.weights)
    d = cfg.DATA
    dataset = AvaDataset(split.keyframes, _frames(ava_dir, split, "AVA train frame lists"), train=True,
                         num_frames=d.NUM_FRAMES, sampling_rate=d.SAMPLING_RATE, norm=_norm(cfg, init.meta),
                         seed=cfg.RNG_SEED, num_classes=cfg.MODEL.NUM_CLASSES, crop_size=d.TRAIN_CROP_SIZE,
                         jitter=tuple(d.TRAIN_JITTER_SCALES), inverse_jitter=d.INV_UNIFORM_SAMPLE)
    optimizer, schedule = solver_from_config(cfg)
    trainer = Trainer(model, dataset, run_dir=run_dir, epochs=cfg.SOLVER.MAX_EPOCH,
                      global_batch_size=cfg.TRAIN.BATCH_SIZE, optimizer=optimizer, schedule=schedule,
                      seed=cfg.RNG_SEED, step_fn=detection_step, collate_fn=collate_train,
                      num_workers=cfg.DATA_LOADER.NUM_WORKERS, dist=ctx, progress=progress,
                      checkpoint_every=cfg.TRAIN.CHECKPOINT_PERIOD)
    history = trainer.fit(resume=resume)
    record = {"epochs": len(history), "final_train_loss": history[-1].get("train_loss") if history else None,
              "split": split.record(), "runtime": trainer.runtime.record}
    return model, record


def evaluate(model: DetectionModel, cfg: CfgNode, ava_dir: Path, meta: dict, run_dir: Path, ctx: DistContext,
             progress: bool = True, detections_file: str = DETECTIONS_FILE) -> tuple[dict, dict]:
    """Score every test box, write ``run_dir/detections_file`` and compute frame-mAP@0.5 from it (rank 0)."""
    split = _test_split(cfg, ava_dir)
    ann = ava_dir / ANNOTATION_DIR
    labelmap = read_labelmap(ann / cfg.AVA.LABEL_MAP_FILE)
    class_ids = sorted(labelmap)
    if class_ids[0] < 1 or class_ids[-1] > cfg.MODEL.NUM_CLASSES:
        raise SevereError(f"{ann / cfg.AVA.LABEL_MAP_FILE}: class ids must lie in 1..{cfg.MODEL.NUM_CLASSES}, "
                          f"got {class_ids[0]}..{class_ids[-1]}")
    d = cfg.DATA
    dataset = AvaDataset(split.keyframes, _frames(ava_dir, split, "AVA test frame lists"), train=False,
                         num_frames=d.NUM_FRAMES, sampling_rate=d.SAMPLING_RATE, norm=_norm(cfg, meta),
                         seed=cfg.RNG_SEED, num_classes=cfg.MODEL.NUM_CLASSES, test_size=d.TEST_CROP_SIZE)
    scores = predict_boxes(model, dataset, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA_LOADER.NUM_WORKERS,
                           ctx=ctx, progress=progress)
    counts = {"test": split.record(), "label_map_classes": len(class_ids), "detections_file": detections_file}
    if not ctx.is_main:
        return {}, counts
    path = write_boxes_csv(Path(run_dir) / detections_file, detection_rows(split, scores, class_ids))
    result = frame_map(read_boxes_csv(ann / cfg.AVA.GROUNDTRUTH_FILE), read_boxes_csv(path, require_score=True),
                       class_ids, read_exclusions(ann / cfg.AVA.EXCLUSION_FILE))
    per_class = {str(k): v for k, v in result["per_class"].items()}
    return {"mAP": result["mAP"], "per_class_ap": per_class}, counts


def _deviations(method: str) -> list[str]:
    out = [
        "reported model = last epoch on the full val set (as the original); no per-epoch validation",
        "RoIAlign = torchvision.ops.roi_align(aligned=True) instead of detectron2's (identical op)",
        "boxes flipped and clipped in continuous pixel coordinates (original cv2 helpers: W - 1 - x, clip to W - 1)",
        "training boxes: the ground-truth csv is not re-read as a 'predicted box' list (no effect after de-duplication)",
        "detections csv keeps full-precision scores (the original wrote 4 decimals but evaluated in memory)",
    ]
    if method == "tclr":
        out.append("TCLR: its own layer4 (the original left layer4.0 random) and temporal pooling over its 8-step map")
    return out


def run(cfg: CfgNode, trust: bool = False, resume: bool = False, progress: bool = True) -> dict | None:
    """Train (TRAIN.ENABLE) and/or test (TEST.ENABLE) as the config says; returns the results record
    (None when only training, or on non-main ranks)."""
    ava_dir = task_data_dir(cfg, "ava")
    ctx = init_distributed()
    extra: dict = {}
    start = start_task_run(cfg, ctx.is_main, trust, resume)
    run_dir, meta, method = start.run_dir, start.meta, start.method
    if start.init is not None:
        model, extra["train"] = train(cfg, start.init, ava_dir, run_dir, ctx, start.resume, progress)
    else:
        model = _model(cfg, meta["arch"])
        load_trained_weights(model, run_dir, cfg.SOLVER.MAX_EPOCH)
    if not cfg.TEST.ENABLE:
        return None
    target = results_target(run_dir)  # a training run never has results yet (prepare_run_dir refuses them)
    retest = target.name == RETEST_FILE
    metrics, counts = evaluate(model, cfg, ava_dir, meta, run_dir, ctx, progress,
                               detections_file=RETEST_DETECTIONS_FILE if retest else DETECTIONS_FILE)
    if not ctx.is_main:
        return None
    results = make_results(
        experiment_id="ava", task="ava", dataset="ava", factor="task", mode="finetune", init_method=method,
        metrics=metrics, primary_metric="mAP", primary_value=round(100.0 * metrics["mAP"], 4), higher_is_better=True,
        seed=cfg.RNG_SEED, config=to_plain(cfg), data=counts, deviations=_deviations(method),
        extra={"init": meta, **extra})
    atomic_write_json(target, results)
    log.info("ava %s: frame-mAP@0.5 %.2f%% (%d keyframes) -> %s", method, results["primary"]["value"],
             counts["test"]["keyframes"], run_dir)
    return results
