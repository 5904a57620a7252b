"""AVA v2.2 samples (docs/tasks.md §1.2): keyframes with their boxes and labels, clip sampling, the dataset.

* A sample is one keyframe (video, second s), s in [902, 1798], holding at least one box. Keyframes are
  ordered by the video's position in the frame lists, then by second (PySlowFast's order).
* Boxes of a keyframe come from the listed files in order (training: ground truth, then person-detector
  boxes with score >= threshold; test: detector boxes only) and are **de-duplicated by exact
  coordinates**, their labels merged. Label -1 (negative) or empty adds no class: such a box gets an
  all-zero target. Action id k -> target position k - 1.
* Clip: centre c = (s - 900) * 30 in the video's frame list, ``num_frames`` frames at
  c - num_frames * rate // 2 + rate * k, clamped to the video.
* Training view: short side from DATA.TRAIN_JITTER_SCALES, random square crop, flip 0.5; boxes follow
  (:mod:`severe.data.spatial`). Test view: short side = DATA.TEST_CROP_SIZE, whole frame.
  All randomness of item i in epoch e comes from ``numpy.random.default_rng([seed, e, i])``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from severe.data.readers.ava import (
    ANNOTATION_DIR,
    AvaBox,
    keyframe_index,
    read_ava_detections,
    read_ava_frame_list,
    read_ava_ground_truth,
)
from severe.data.readers.frame_list import FrameListVideo
from severe.data.sampling import CentredClipSampler
from severe.data.transforms import Normalization
from severe.data.frames import FrameVideos
from severe.data.spatial import SpatialPlan, boxes_to_pixels, resize_plan, train_plan
from severe.errors import SevereError

__all__ = [
    "FIRST_KEYFRAME",
    "LAST_KEYFRAME",
    "Keyframe",
    "AvaSplit",
    "merge_keyframes",
    "keyframe_positions",
    "multi_hot",
    "load_ava_split",
    "AvaDataset",
    "batch_rois",
    "size_multiple",
    "fit_to_multiple",
    "collate_train",
    "collate_list",
]

log = logging.getLogger("severe.detection")

FIRST_KEYFRAME, LAST_KEYFRAME = 902, 1798
FRAME_LIST_DIR = "frame_lists"
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class Keyframe:
    """One sample: the unique boxes of (video_id, second), normalised (x1, y1, x2, y2) as in the files,
    and the action ids of each box (empty tuple = negative / unlabelled box)."""

    video_id: str
    second: int
    boxes: np.ndarray  # [n, 4] float64
    labels: tuple[tuple[int, ...], ...]

    @property
    def key(self) -> str:
        return f"{self.video_id},{self.second:04d}"


def merge_keyframes(rows: Iterable[AvaBox], video_order: Sequence[str]) -> list[Keyframe]:
    """Group box rows into keyframes: boxes de-duplicated by exact coordinates (first-appearance order),
    labels merged (-1 and empty ignored); keyframes ordered by ``video_order`` then second."""
    rank = {v: i for i, v in enumerate(video_order)}
    grouped: dict[tuple[str, int], dict[tuple[float, ...], list[int]]] = {}
    for r in rows:
        if r.video_id not in rank:
            raise SevereError(f"box rows name video {r.video_id}, which is not in the frame lists")
        if not FIRST_KEYFRAME <= r.timestamp <= LAST_KEYFRAME:
            raise SevereError(f"box row {r.key}: second {r.timestamp} is outside AVA's keyframes "
                              f"{FIRST_KEYFRAME}..{LAST_KEYFRAME}")
        labels = grouped.setdefault((r.video_id, r.timestamp), {}).setdefault(tuple(r.box), [])
        if r.action_id is not None and r.action_id != -1 and r.action_id not in labels:
            labels.append(r.action_id)
    out = []
    for (vid, sec), boxes in sorted(grouped.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1])):
        out.append(Keyframe(vid, sec, np.array(list(boxes), dtype=np.float64).reshape(-1, 4),
                            tuple(tuple(sorted(v)) for v in boxes.values())))
    return out


def keyframe_positions(second: int, video_frames: int, num_frames: int, rate: int) -> list[int]:
    """Frame-list positions of the clip around keyframe ``second``: c - num_frames*rate//2 + rate*k, clamped."""
    return CentredClipSampler(num_frames, rate)(keyframe_index(second), video_frames)


def multi_hot(labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """[n, num_classes] float32 targets: action id k -> column k - 1."""
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    for i, ids in enumerate(labels):
        for a in ids:
            if not 1 <= a <= num_classes:
                raise SevereError(f"AVA action id {a} outside 1..{num_classes}")
            out[i, a - 1] = 1.0
    return out


@dataclass
class AvaSplit:
    """Videos (frame lists) and keyframes of one split, plus counts for the results record."""

    videos: dict[str, FrameListVideo]
    keyframes: list[Keyframe]
    files: dict[str, list[str]]

    def record(self) -> dict:
        with_boxes = {k.video_id for k in self.keyframes}
        return {"videos": len(with_boxes), "keyframes": len(self.keyframes),
                "boxes": int(sum(len(k.boxes) for k in self.keyframes)),
                "labelled_boxes": int(sum(1 for k in self.keyframes for lb in k.labels if lb)), "files": self.files}


def load_ava_split(ava_dir: Path, *, frame_lists: Sequence[str], gt_files: Sequence[str],
                   detection_files: Sequence[str], score_threshold: float) -> AvaSplit:
    """Frame lists under ``ava/frame_lists``, ground-truth files (all rows) and detector files (score >=
    ``score_threshold``) under ``ava/annotations``, merged into keyframes."""
    ava_dir = Path(ava_dir)
    videos: dict[str, FrameListVideo] = {}
    for name in frame_lists:
        for vid, v in read_ava_frame_list(ava_dir / FRAME_LIST_DIR / name).items():
            if vid in videos:
                raise SevereError(f"{ava_dir / FRAME_LIST_DIR / name}: video {vid} is listed twice in the frame lists")
            videos[vid] = v
    rows: list[AvaBox] = []
    for name in gt_files:
        rows += read_ava_ground_truth(ava_dir / ANNOTATION_DIR / name)
    for name in detection_files:
        rows += read_ava_detections(ava_dir / ANNOTATION_DIR / name, min_score=score_threshold)
    keyframes = merge_keyframes(rows, list(videos))
    if not keyframes:
        raise SevereError(f"no keyframe with a box in {', '.join([*gt_files, *detection_files])} "
                          f"(score threshold {score_threshold})")
    files = {"frame_lists": list(frame_lists), "ground_truth": list(gt_files), "detections": list(detection_files)}
    return AvaSplit(videos, keyframes, files)


def size_multiple(arch: str) -> int:
    """What the frame sides of a backbone's input must be a multiple of: the patch size (= spatial stride) of a
    ViT (:data:`severe.models.vit.VIT_FAMILIES`), 1 for convolutional backbones (any size)."""
    from severe.models.registry import get_backbone_spec
    from severe.models.vit import VIT_FAMILIES

    spec = get_backbone_spec(arch)
    return spec.spatial_stride if spec.family in VIT_FAMILIES else 1


def fit_to_multiple(plan: SpatialPlan, multiple: int) -> SpatialPlan:
    """A whole-frame plan whose resize target is rounded to the nearest multiple of ``multiple`` per side (at least
    one multiple); :meth:`SpatialPlan.boxes` then scales the boxes by the same per-axis factors."""
    if multiple <= 1 or plan.crop is not None:
        return plan
    height, width = (max(multiple, multiple * round(v / multiple)) for v in (plan.height, plan.width))
    return SpatialPlan(height, width, None, plan.flip)


class AvaDataset(Dataset):
    """Keyframe clips. Training items: ``(clip [C,T,S,S], boxes [n,4] pixels, targets [n,C], i)``;
    test items: ``(clip [C,T,H',W'], boxes [n,4] pixels, i)`` (whole frame, short side ``test_size``; with
    ``size_multiple`` > 1, e.g. a ViT's patch size, both sides resized to the nearest multiple of it)."""

    def __init__(self, keyframes: Sequence[Keyframe], frames: FrameVideos, *, train: bool, num_frames: int,
                 sampling_rate: int, norm: Normalization, seed: int, num_classes: int, crop_size: int = 112,
                 jitter: tuple[int, int] = (256, 320), inverse_jitter: bool = True, test_size: int = 112,
                 size_multiple: int = 1) -> None:
        if train and crop_size % size_multiple:
            raise SevereError(f"DATA.TRAIN_CROP_SIZE {crop_size} is not a multiple of the backbone's patch size "
                              f"{size_multiple}; use e.g. {size_multiple * max(1, round(crop_size / size_multiple))}")
        self.size_multiple = int(size_multiple)
        self.keyframes = list(keyframes)
        self.frames = frames
        self.train = train
        self.num_frames, self.sampling_rate = num_frames, sampling_rate
        self.sampler = CentredClipSampler(num_frames, sampling_rate)
        self.norm, self.seed, self.num_classes = norm, seed, num_classes
        self.crop_size, self.jitter, self.inverse_jitter, self.test_size = crop_size, tuple(jitter), inverse_jitter, test_size
        self.epoch = 0
        sizes = np.array([len(k.boxes) for k in self.keyframes], dtype=np.int64)
        self.box_offsets = np.concatenate([[0], np.cumsum(sizes)])

    @property
    def num_boxes(self) -> int:
        return int(self.box_offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.keyframes)

    def plan(self, index: int, height: int, width: int) -> SpatialPlan:
        """The spatial plan of item ``index`` in the current epoch for a ``height`` x ``width`` video."""
        if not self.train:
            return fit_to_multiple(resize_plan(height, width, self.test_size), self.size_multiple)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return train_plan(height, width, rng, jitter=self.jitter, inverse=self.inverse_jitter, crop=self.crop_size)

    def __getitem__(self, index: int):
        kf = self.keyframes[index]
        positions = self.sampler(keyframe_index(kf.second), self.frames.num_frames(kf.video_id))
        video = self.frames.read(kf.video_id, positions)
        h, w = video.shape[-2:]
        plan = self.plan(index, h, w)
        clip = self.norm.apply(plan.frames(video))
        boxes = torch.from_numpy(plan.boxes(boxes_to_pixels(kf.boxes, h, w), h, w).astype(np.float32))
        if self.train:
            return clip, boxes, torch.from_numpy(multi_hot(kf.labels, self.num_classes)), index
        return clip, boxes, index


def batch_rois(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-clip pixel boxes [n_b, 4] -> RoIAlign rois [N, 5] = (clip index in the batch, x1, y1, x2, y2)."""
    return torch.cat([torch.cat([torch.full((len(b), 1), float(i), dtype=b.dtype), b], dim=1) for i, b in enumerate(boxes)])


def collate_train(items: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(clips [B,C,T,S,S], rois [N,5] = (item in batch, x1, y1, x2, y2), targets [N,C], indices [B])."""
    clips = torch.stack([it[0] for it in items])
    rois = batch_rois([it[1] for it in items])
    targets = torch.cat([it[2] for it in items])
    return clips, rois, targets, torch.tensor([it[3] for it in items], dtype=torch.int64)


def collate_list(items: list) -> list:
    """Test batches stay lists: whole frames of different videos may differ in size."""
    return items
