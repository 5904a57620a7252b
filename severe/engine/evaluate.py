"""Dense test protocol (docs/protocol.md §4) and feature extraction for the kNN probe (§8.4).

A test dataset yields (clips [K,C,T,H,W], label, index) for one video; a training-style dataset yielding
(clip [C,T,H,W], label, index) is treated as K = 1. Each rank evaluates a contiguous shard of the
dataset aligned to whole batches; per-video outputs are gathered by index on every rank
(distributed.py), so the result equals a single-process run with the same batch size exactly. Evaluation runs the bare model (no DDP wrapper), in eval mode, without
gradients, with no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from severe.data.dataset import collate_clips
from severe.engine.distributed import DistContext, gather_by_index, unwrap_model
from severe.engine.loaders import build_eval_loader
from severe.engine.runtime import resolve_runtime
from severe.errors import SevereError

__all__ = ["EvalOutput", "AGGREGATORS", "predict_dense", "extract_features"]


@dataclass
class EvalOutput:
    """Per-video outputs ordered by dataset index: ``values`` [N, ...], ``labels`` [N, ...], ``indices`` [N]."""

    values: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def _softmax_mean(out: torch.Tensor) -> torch.Tensor:
    return out.float().softmax(dim=-1).mean(dim=1)


def _sigmoid_max(out: torch.Tensor) -> torch.Tensor:
    return out.float().sigmoid().amax(dim=1)


def _mean(out: torch.Tensor) -> torch.Tensor:
    return out.float().mean(dim=1)


# How the K clip outputs [B, K, C] of a video become one score vector [B, C].
AGGREGATORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax_mean": _softmax_mean,  # recognition: probabilities averaged over clips (not logits)
    "sigmoid_max": _sigmoid_max,  # Charades: element-wise max of sigmoid scores over views
    "mean": _mean,  # features (kNN): mean over clips
}


def _call(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    return model(clips)


def _backbone_features(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    prepare = getattr(model, "prepare", None)  # VideoClassifier: uint8 clips are normalised on the device
    return model.backbone(prepare(clips) if prepare is not None else clips)


def _run(
    model: nn.Module,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    aggregate: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int,
    ctx: DistContext | None,
    amp: str,
    channels_last: bool,
    collate_fn: Callable | None,
    progress: bool,
    desc: str,
) -> EvalOutput:
    ctx = ctx or DistContext()
    runtime = resolve_runtime(ctx.device, amp, channels_last)
    net = unwrap_model(model).to(ctx.device, memory_format=runtime.memory_format).eval()
    # collate_clips: ClipDataset batches come preassembled (no copy); anything else goes to default_collate
    loader = build_eval_loader(dataset, batch_size, ctx, num_workers=num_workers, collate_fn=collate_fn or collate_clips,
                               pin_memory=ctx.device.type == "cuda")
    values, labels, indices = [], [], []
    with torch.inference_mode(), runtime.autocast():
        for batch in tqdm(loader, desc=desc, leave=False, disable=not (progress and ctx.is_main)):
            clips, label, index = batch[0], batch[1], batch[2]
            if clips.dim() == 5:  # one clip per item
                clips = clips.unsqueeze(1)
            b, k = clips.shape[:2]
            flat = clips.flatten(0, 1).to(ctx.device, non_blocking=True).contiguous(memory_format=runtime.memory_format)
            out = forward(net, flat)
            values.append(aggregate(out.reshape(b, k, *out.shape[1:])).cpu().numpy())
            labels.append(np.asarray(label))
            indices.append(np.asarray(index, dtype=np.int64).reshape(-1))
    local = {"values": np.concatenate(values), "labels": np.concatenate(labels)} if values else {}
    local_indices = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
    arrays, order = gather_by_index(local, local_indices, ctx, expected=len(dataset))
    return EvalOutput(arrays["values"], arrays["labels"], order)


def predict_dense(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 1,
    num_workers: int = 0,
    ctx: DistContext | None = None,
    aggregate: str = "softmax_mean",
    amp: str = "off",
    channels_last: bool = False,
    collate_fn: Callable | None = None,
    progress: bool = True,
) -> EvalOutput:
    """Per-video scores [N, C] of the dense test protocol: softmax per clip, averaged over the K clips.

    batch_size counts videos (each forward pass sees batch_size · K clips). ``aggregate`` is a key of
    ``AGGREGATORS``. The model is moved to the context's device and put in eval mode. Every rank
    returns the full, index-ordered result.
    """
    if aggregate not in AGGREGATORS:
        raise SevereError(f"evaluation: unknown aggregation '{aggregate}'; choose one of {sorted(AGGREGATORS)}")
    return _run(
        model, _call, AGGREGATORS[aggregate], dataset, batch_size=batch_size, num_workers=num_workers, ctx=ctx, amp=amp,
        channels_last=channels_last, collate_fn=collate_fn, progress=progress, desc="test",
    )


def extract_features(
    model: nn.Module,
    dataset: Dataset,
    *,
    feature_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    ctx: DistContext | None = None,
    amp: str = "off",
    channels_last: bool = False,
    collate_fn: Callable | None = None,
    progress: bool = True,
) -> EvalOutput:
    """Per-video features [N, D] (mean over the item's clips) for the kNN probe.

    feature_fn(model, clips [B,C,T,H,W]) -> [B, D]; default: ``model.backbone(clips)`` (the pooled
    feature of ``VideoClassifier``). The model is moved to the context's device and put in eval mode.
    """
    if feature_fn is None:
        if not hasattr(unwrap_model(model), "backbone"):
            raise SevereError("feature extraction: the model has no 'backbone' module; pass feature_fn")
        feature_fn = _backbone_features
    return _run(
        model, feature_fn, _mean, dataset, batch_size=batch_size, num_workers=num_workers, ctx=ctx, amp=amp,
        channels_last=channels_last, collate_fn=collate_fn, progress=progress, desc="features",
    )
