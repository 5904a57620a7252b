"""Anchor targets and the training loss of the two streams (docs/tasks.md §3.4).

For a stream whose current length is ``L`` and whose true cycle length is ``g`` (= estimate + 1):
anchor ``a`` is positive when ``IoU = min(g, aL) / max(g, aL) >= threshold`` (0.5, no ignore band), its
regression target is ``log(g / (aL))``; non-positive anchors get zero regression loss. An undefined
estimate (-1) or a position outside the segment ignores the whole stream (classification target -1).

Loss = CE(cls_1) + CE(cls_2) + w * SmoothL1(box_1) + w * SmoothL1(box_2), w = 50; each CE is the mean
over the non-ignored (item, anchor) entries (0 when all are ignored); each SmoothL1 is the mean over
all B x A entries, non-positive entries contributing 0 (the original substituted the detached
prediction as their target, which gives exactly that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

ANCHORS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)
IGNORE = -1


def label_at(estimates: np.ndarray, position: int) -> int:
    """The estimate at a segment position, -1 outside the segment."""
    position = int(position)
    if position < 0 or position >= len(estimates):
        return IGNORE
    return int(estimates[position])


def stream_targets(estimate: int, current_length: float, anchors: Sequence[float] = ANCHORS,
                   iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cls int64 [A] in {-1, 0, 1}, box float32 [A], positive bool [A]) of one stream."""
    A = len(anchors)
    cls = np.full(A, IGNORE, dtype=np.int64)
    box = np.zeros(A, dtype=np.float32)
    if estimate < 0 or current_length <= 0:
        return cls, box, np.zeros(A, dtype=bool)
    g = float(estimate) + 1.0
    for k, a in enumerate(anchors):
        span = float(a) * float(current_length)
        iou = min(g, span) / max(g, span)
        if iou >= iou_threshold:
            cls[k] = 1
            box[k] = math.log(g / span)
        else:
            cls[k] = 0
    return cls, box, cls == 1


@dataclass
class BatchTargets:
    """Targets of one state-machine step for a batch: per stream cls [B,A], box [B,A], positive [B,A]."""

    cls1: torch.Tensor
    box1: torch.Tensor
    pos1: torch.Tensor
    cls2: torch.Tensor
    box2: torch.Tensor
    pos2: torch.Tensor

    def to(self, device: torch.device) -> "BatchTargets":
        return BatchTargets(*(t.to(device) for t in (self.cls1, self.box1, self.pos1, self.cls2, self.box2, self.pos2)))


def state_targets(states: Sequence[tuple[int, int, int]], pre: Sequence[np.ndarray], nxt: Sequence[np.ndarray],
                  anchors: Sequence[float] = ANCHORS, iou_threshold: float = 0.5) -> BatchTargets:
    """Targets for states (lp, mp, rp): stream 1 = previous cycle [lp, mp] with ``pre[mp]``, stream 2 =
    next cycle [mp + 1, rp] with ``nxt[mp + 1]``."""
    rows1, rows2 = [], []
    for (lp, mp, rp), p, n in zip(states, pre, nxt):
        rows1.append(stream_targets(label_at(p, mp), mp - lp + 1, anchors, iou_threshold))
        rows2.append(stream_targets(label_at(n, mp + 1), rp - mp, anchors, iou_threshold))

    def stack(rows, k):
        return torch.from_numpy(np.stack([r[k] for r in rows]))

    return BatchTargets(stack(rows1, 0), stack(rows1, 1), stack(rows1, 2), stack(rows2, 0), stack(rows2, 1), stack(rows2, 2))


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE over the 2-way dimension of logits [B, 2, A], mean over entries with target != -1 (0 if none)."""
    if not bool((target != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, ignore_index=IGNORE)


def _box_loss(pred: torch.Tensor, target: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    pred = pred.float()
    full = torch.where(positive, target.to(pred.dtype), pred.detach())
    return F.smooth_l1_loss(pred, full)


def repetition_loss(outputs: tuple[torch.Tensor, ...], targets: BatchTargets, box_weight: float = 50.0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, classification part, regression part) for model outputs (cls1, box1, cls2, box2)."""
    cls1, box1, cls2, box2 = outputs
    loss_cls = _cross_entropy(cls1, targets.cls1) + _cross_entropy(cls2, targets.cls2)
    loss_box = box_weight * (_box_loss(box1, targets.box1, targets.pos1) + _box_loss(box2, targets.box2, targets.pos2))
    return loss_cls + loss_box, loss_cls, loss_box
