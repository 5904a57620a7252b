"""Repetition-counting metrics (docs/tasks.md §3.6): normalised absolute error and off-by-one accuracy.

Both are fractions over the test videos: ``mae = mean_v |p_v - g_v| / g_v`` (SEVERE's "UCF-RC error",
lower is better) and ``obo = mean_v [|p_v - g_v| <= 1]``. :func:`repetition_summary` adds the logged
extras of the original validation: the (population) standard deviation of the normalised error and its
mean over the over-counted and over the under-counted videos.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from severe.errors import SevereError

__all__ = ["repetition_errors", "repetition_summary"]


def _check(pred: Sequence[float], gt: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64) if len(np.shape(pred)) else np.asarray([pred], dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64) if len(np.shape(gt)) else np.asarray([gt], dtype=np.float64)
    if p.ndim != 1 or g.ndim != 1:
        raise SevereError(f"repetition counts must be 1-D lists, got shapes {list(p.shape)} and {list(g.shape)}")
    if p.shape[0] != g.shape[0]:
        raise SevereError(f"repetition counts: {p.shape[0]} predictions for {g.shape[0]} ground-truth counts")
    if p.shape[0] == 0:
        raise SevereError("repetition counts: no videos to evaluate")
    for name, arr in (("prediction", p), ("ground-truth count", g)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise SevereError(f"repetition counts: non-finite {name} for video {int(np.flatnonzero(bad)[0])}")
    if (g <= 0).any():
        i = int(np.flatnonzero(g <= 0)[0])
        raise SevereError(f"repetition counts: ground-truth count {g[i]:g} of video {i} must be > 0")
    return p, g


def repetition_errors(pred: Sequence[float], gt: Sequence[float]) -> dict[str, float]:
    """``{"mae": mean(|p - g| / g), "obo": mean(|p - g| <= 1)}`` as fractions.

    SevereError for empty or mismatched inputs, non-finite values or a ground truth <= 0.
    """
    p, g = _check(pred, gt)
    err = np.abs(p - g)
    return {"mae": float(np.mean(err / g)), "obo": float(np.mean(err <= 1))}


def repetition_summary(pred: Sequence[float], gt: Sequence[float]) -> dict:
    """:func:`repetition_errors` plus ``mae_std`` (population std of the normalised error),
    ``mae_over``/``mae_under`` (mean normalised error over over-/under-counted videos, None if there are
    none), ``num_over``, ``num_under``, ``num_exact`` and ``num_videos``."""
    p, g = _check(pred, gt)
    norm = np.abs(p - g) / g
    over, under = p > g, p < g
    return {
        **repetition_errors(p, g),
        "mae_std": float(np.std(norm)),
        "mae_over": float(np.mean(norm[over])) if over.any() else None,
        "mae_under": float(np.mean(norm[under])) if under.any() else None,
        "num_over": int(over.sum()),
        "num_under": int(under.sum()),
        "num_exact": int((p == g).sum()),
        "num_videos": int(p.shape[0]),
    }
