"""Charades multi-label mAP, the SEVERE/PySlowFast convention (docs/tasks.md §2.4).

Per class, non-interpolated average precision exactly as scikit-learn's ``average_precision_score``
computes it: rank by descending score; every *distinct* score is one threshold (tied scores enter
together); AP = sum_n (R_n - R_{n-1}) * P_n over the thresholds, i.e. each positive contributes the
precision at the end of its tie group, divided by the number of positives. Classes without a positive
are dropped; mAP is the plain mean over the rest, in [0, 1]. The official Charades evaluator differs
(label-less videos at -inf, different tie handling): do not mix the two.

Unlike the original, any problem raises SevereError instead of silently returning 0.
"""

from __future__ import annotations

import numpy as np

from severe.errors import SevereError

__all__ = ["charades_map", "average_precision_per_class"]


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise SevereError(f"charades mAP: scores {list(scores.shape)} and labels {list(labels.shape)} must be "
                          "two arrays of the same shape [N videos, C classes]")
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise SevereError(f"charades mAP: empty input of shape {list(scores.shape)}")
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        raise SevereError(f"charades mAP: scores must be numbers, got dtype {scores.dtype}")
    if not np.isfinite(scores).all():
        i, c = np.argwhere(~np.isfinite(scores))[0]
        raise SevereError(f"charades mAP: non-finite score {scores[i, c]} (video {i}, class {c}); the model produced NaN/inf")
    if labels.dtype != bool:
        if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
            raise SevereError(f"charades mAP: labels must be binary numbers, got dtype {labels.dtype}")
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            i, c = np.argwhere(bad)[0]
            raise SevereError(f"charades mAP: labels must be 0/1, got {labels[i, c]} (video {i}, class {c})")
    return scores.astype(np.float64), labels.astype(bool)


def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[C] scikit-learn-style AP per class (NaN for a class without a positive). Inputs as charades_map."""
    scores, labels = _check(scores, labels)
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    s = np.take_along_axis(scores, order, axis=0)
    y = np.take_along_axis(labels, order, axis=0)
    tps = np.cumsum(y, axis=0)
    # end of the tie group of every rank: the next rank whose score differs from the following one
    is_end = np.ones_like(y)
    is_end[:-1] = s[:-1] != s[1:]
    rank = np.arange(n)[:, None]
    group_end = np.minimum.accumulate(np.where(is_end, rank, n)[::-1], axis=0)[::-1]
    precision_at_end = np.take_along_axis(tps, group_end, axis=0) / (group_end + 1.0)
    positives = tps[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(y, precision_at_end, 0.0).sum(axis=0) / positives
    return np.where(positives > 0, ap, np.nan)


def charades_map(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes with >= 1 positive of the per-class AP (see module docstring), in [0, 1].

    scores: [N, C] (sigmoid outputs, max over views); labels: [N, C] binary (bool, 0/1 ints or floats).
    Raises SevereError on shape mismatch, non-binary labels, non-finite scores or no positive at all.
    """
    ap = average_precision_per_class(scores, labels)
    kept = ~np.isnan(ap)
    if not kept.any():
        raise SevereError("charades mAP: no class has a positive label; nothing to evaluate (wrong labels?)")
    return float(ap[kept].mean())
