"""AVA v2.2 spatio-temporal action detection (``SlowFast-ssl-vssl/``): backbone + RoI head, frame-mAP@0.5.

Run directory files besides the lifecycle's: detections.csv (every test box x every label-map class:
video,%04d second,x1,y1,x2,y2,class,score with the original normalised detector box and the sigmoid
score; evaluated by frame-mAP@0.5), retest_detections.csv for a later re-test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from tqdm import tqdm

from severe.data.readers.ava import ANNOTATION_DIR
from severe.data.registry import dataset_dir, get_dataset
from severe.data.transforms import Normalization
from severe.detection.data import (FRAMES_DIR, AvaDataset, AvaSplit, batch_rois, collate_list, collate_train,
                                   load_ava_split, size_multiple)
from severe.data.frames import FrameVideos
from severe.detection.model import DetectionModel, RoIHead
from severe.engine import DistContext, StepOutput, build_eval_loader, gather_by_index, unwrap_model
from severe.engine.trainer import Trainer
from severe.errors import SevereError
from severe.metrics.ava import AvaRows, frame_map, read_boxes_csv, read_exclusions, read_labelmap, write_boxes_csv
from severe.tasks import lifecycle
from severe.tasks.base import EntryPoint, Job
from severe.tasks.slowfast import CONFIG_DIR, SlowFastTask, raise_first, slowfast_defaults, solver_from_config, validate_common

DETECTIONS_FILE, RETEST_DETECTIONS_FILE = "detections.csv", "retest_detections.csv"
CONFIGS = CONFIG_DIR / "AVA"


def ava_defaults() -> CfgNode:
    """AVA v2.2 detection schema; defaults = SEVERE's AVA setting."""
    c = slowfast_defaults("ava")
    c.DETECTION = CfgNode()
    c.DETECTION.ROI_XFORM_RESOLUTION = 7
    c.DETECTION.SPATIAL_SCALE_FACTOR = 0  # feature stride (RoIAlign spatial_scale = 1 / stride): 0 = the backbone's
    # spatial stride (16 for the R(2+1)D-18 family, 32 for I3D); any other value must equal it
    c.AVA = CfgNode()
    c.AVA.DETECTION_SCORE_THRESH = 0.9
    c.AVA.TRAIN_LISTS = ["train.csv"]  # frame lists under ava/frame_lists/
    c.AVA.TEST_LISTS = ["val.csv"]
    c.AVA.TRAIN_GT_BOX_LISTS = ["ava_train_v2.2.csv"]  # under ava/annotations/, all rows used
    c.AVA.TRAIN_PREDICT_BOX_LISTS = ["person_box_67091280_iou90/ava_detection_train_boxes_and_labels_include_negative_v2.2.csv"]
    c.AVA.TEST_PREDICT_BOX_LISTS = ["person_box_67091280_iou90/ava_detection_val_boxes_and_labels.csv"]
    c.AVA.GROUNDTRUTH_FILE = "ava_val_v2.2.csv"
    c.AVA.EXCLUSION_FILE = "ava_val_excluded_timestamps_v2.2.csv"
    c.AVA.LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    return c


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
    """One row per (test box, label-map class) in keyframe, box, class order."""
    cols = np.asarray(class_ids, dtype=np.int64) - 1
    videos, seconds, boxes = [], [], []
    for kf in split.keyframes:
        n = len(kf.boxes)
        videos += [kf.video_id] * (n * len(cols))
        seconds += [kf.second] * (n * len(cols))
        boxes.append(np.repeat(kf.boxes, len(cols), axis=0))
    return AvaRows.from_columns(videos, seconds, np.concatenate(boxes), np.tile(class_ids, len(scores)),
                                scores[:, cols].astype(np.float64).reshape(-1))


def _frames(ava_dir: Path, split: AvaSplit, source: str) -> FrameVideos:
    spec = get_dataset("ava")
    frames = FrameVideos(ava_dir / FRAMES_DIR, split.videos.values(), spec.frames_fps, spec.frame_pattern, source=source)
    frames.check_present({k.video_id for k in split.keyframes})
    return frames


def _norm(cfg: CfgNode, meta: dict) -> Normalization:
    return Normalization.from_meta(meta, list(cfg.DATA.MEAN), list(cfg.DATA.STD))


# ------------------------------------------------------------------------------------------- task

@dataclass
class AvaData:
    folder: Path
    train_split: AvaSplit | None
    train: AvaDataset | None


class AvaTask(SlowFastTask):
    name = "ava"
    dataset = "ava"
    description = "AVA v2.2 detection (SlowFast-ssl-vssl/tools/run_net.py)"
    entry_points = {"ava": EntryPoint("severe.detection.cli", "main", "AVA v2.2 detection (SlowFast-ssl-vssl/tools/run_net.py)")}

    def defaults(self) -> CfgNode:
        return ava_defaults()

    def validate(self, cfg: CfgNode) -> None:
        raise_first(validate_common(cfg, get_dataset("ava").num_classes, "ava") + [
            (cfg.DETECTION.ROI_XFORM_RESOLUTION > 0 and cfg.DETECTION.SPATIAL_SCALE_FACTOR >= 0,
             "DETECTION.ROI_XFORM_RESOLUTION must be positive and DETECTION.SPATIAL_SCALE_FACTOR >= 0 (0 = the "
             "backbone's stride)"),
            (0.0 <= cfg.AVA.DETECTION_SCORE_THRESH <= 1.0,
             f"AVA.DETECTION_SCORE_THRESH must be in [0, 1], got {cfg.AVA.DETECTION_SCORE_THRESH}"),
            (all(len(cfg.AVA[k]) > 0 for k in ("TRAIN_LISTS", "TEST_LISTS", "TEST_PREDICT_BOX_LISTS")),
             "AVA.TRAIN_LISTS, AVA.TEST_LISTS and AVA.TEST_PREDICT_BOX_LISTS must name at least one file"),
            (len(cfg.AVA.TRAIN_GT_BOX_LISTS) + len(cfg.AVA.TRAIN_PREDICT_BOX_LISTS) > 0,
             "AVA.TRAIN_GT_BOX_LISTS and AVA.TRAIN_PREDICT_BOX_LISTS are both empty: no training boxes"),
        ])

    def prepare(self, job: Job) -> AvaData:
        cfg, folder = job.cfg, dataset_dir(job.data_root, "ava")
        if job.retest:
            return AvaData(folder, None, None)
        a, d = cfg.AVA, cfg.DATA
        split = load_ava_split(folder, frame_lists=a.TRAIN_LISTS, gt_files=a.TRAIN_GT_BOX_LISTS,
                               detection_files=a.TRAIN_PREDICT_BOX_LISTS, score_threshold=a.DETECTION_SCORE_THRESH)
        dataset = AvaDataset(split.keyframes, _frames(folder, split, "AVA train frame lists"), train=True,
                             num_frames=d.NUM_FRAMES, sampling_rate=d.SAMPLING_RATE, norm=_norm(cfg, job.meta),
                             seed=cfg.SEED, num_classes=cfg.MODEL.NUM_CLASSES, crop_size=d.TRAIN_CROP_SIZE,
                             jitter=tuple(d.TRAIN_JITTER_SCALES), inverse_jitter=d.INV_UNIFORM_SAMPLE,
                             size_multiple=size_multiple(job.meta["arch"]))
        return AvaData(folder, split, dataset)

    def build_model(self, cfg: CfgNode, meta: dict, weights) -> DetectionModel:
        backbone = lifecycle.make_backbone(meta["arch"], weights)
        stride, given = backbone.spec.spatial_stride, cfg.DETECTION.SPATIAL_SCALE_FACTOR
        if given and given != stride:
            raise SevereError(f"DETECTION.SPATIAL_SCALE_FACTOR {given:g} does not match the spatial stride {stride} of "
                              f"backbone '{backbone.arch}'; set it to {stride} or to 0 (the backbone's stride)")
        head = RoIHead(backbone.feature_dim, cfg.MODEL.NUM_CLASSES, cfg.DETECTION.ROI_XFORM_RESOLUTION,
                       1.0 / stride, cfg.MODEL.DROPOUT)
        return DetectionModel(backbone, head)

    def train_step(self, job: Job, data: AvaData):
        return detection_step

    def train(self, job: Job, model, data: AvaData) -> dict | None:
        cfg = job.cfg
        optimizer, schedule = solver_from_config(cfg)
        trainer = Trainer(model, data.train, run_dir=job.run_dir, epochs=cfg.TRAIN.EPOCHS,
                          global_batch_size=cfg.TRAIN.BATCH_SIZE, optimizer=optimizer, schedule=schedule,
                          seed=cfg.SEED, step_fn=self.train_step(job, data), collate_fn=collate_train,
                          num_workers=cfg.DATA.NUM_WORKERS, dist=job.ctx, progress=job.progress,
                          checkpoint_every=cfg.TRAIN.CHECKPOINT_EVERY)
        history = trainer.fit(resume=job.resume)
        return {"train": {"epochs": len(history), "final_train_loss": history[-1].get("train_loss") if history else None,
                          "split": data.train_split.record(), "runtime": trainer.runtime.record}}

    def evaluate(self, job: Job, model, data: AvaData) -> tuple[dict, dict]:
        """Score every test box, write the detections csv and compute frame-mAP@0.5 from it (rank 0)."""
        cfg, ava_dir = job.cfg, data.folder
        a, d = cfg.AVA, cfg.DATA
        split = load_ava_split(ava_dir, frame_lists=a.TEST_LISTS, gt_files=[], detection_files=a.TEST_PREDICT_BOX_LISTS,
                               score_threshold=a.DETECTION_SCORE_THRESH)
        ann = ava_dir / ANNOTATION_DIR
        class_ids = sorted(read_labelmap(ann / a.LABEL_MAP_FILE))
        if class_ids[0] < 1 or class_ids[-1] > cfg.MODEL.NUM_CLASSES:
            raise SevereError(f"{ann / a.LABEL_MAP_FILE}: class ids must lie in 1..{cfg.MODEL.NUM_CLASSES}, "
                              f"got {class_ids[0]}..{class_ids[-1]}")
        dataset = AvaDataset(split.keyframes, _frames(ava_dir, split, "AVA test frame lists"), train=False,
                             num_frames=d.NUM_FRAMES, sampling_rate=d.SAMPLING_RATE, norm=_norm(cfg, job.meta),
                             seed=cfg.SEED, num_classes=cfg.MODEL.NUM_CLASSES, test_size=d.TEST_CROP_SIZE,
                             size_multiple=size_multiple(job.meta["arch"]))
        scores = predict_boxes(model, dataset, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS,
                               ctx=job.ctx, progress=job.progress)
        detections_file = DETECTIONS_FILE if job.first_record else RETEST_DETECTIONS_FILE
        counts = {"test": split.record(), "label_map_classes": len(class_ids), "detections_file": detections_file}
        if not job.ctx.is_main:
            return {}, counts
        path = write_boxes_csv(job.run_dir / detections_file, detection_rows(split, scores, class_ids))
        result = frame_map(read_boxes_csv(ann / a.GROUNDTRUTH_FILE), read_boxes_csv(path, require_score=True),
                           class_ids, read_exclusions(ann / a.EXCLUSION_FILE))
        per_class = {str(k): v for k, v in result["per_class"].items()}
        return {"mAP": result["mAP"], "per_class_ap": per_class}, counts

    def deviations(self, job: Job, data: AvaData, counts: dict) -> list[str]:
        out = [
            "reported model = last epoch on the full val set (as the original); no per-epoch validation",
            "RoIAlign = torchvision.ops.roi_align(aligned=True) instead of detectron2's (identical op)",
            "boxes flipped and clipped in continuous pixel coordinates (original cv2 helpers: W - 1 - x, clip to W - 1)",
            "training boxes: the ground-truth csv is not re-read as a 'predicted box' list (no effect after de-duplication)",
            "detections csv keeps full-precision scores (the original wrote 4 decimals but evaluated in memory)",
        ]
        multiple = size_multiple(job.meta["arch"])
        if multiple > 1:
            out.append(f"test frames resized to the nearest multiple of the ViT patch size ({multiple}) per side after "
                       "the short-side resize, boxes scaled by the same factors (a patch backbone takes no other size)")
        if job.method == "tclr":
            out.append("TCLR: its own layer4 (the original left layer4.0 random) and temporal pooling over its 8-step map")
        return out
