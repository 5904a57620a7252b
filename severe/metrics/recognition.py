"""Recognition metrics: video-level top-k, mean-class accuracy (docs/protocol.md §4) and the kNN probe (§8.4).

All accuracies are fractions in [0, 1] (tables multiply by 100).

Tie rule for top-k (documented, deterministic): classes are ranked by descending score and classes with
exactly equal scores are ordered by ascending class id, i.e. the order of a *stable* descending sort
(``np.argsort(-s, kind="stable")``). A video is top-k correct when its label is among the first k of that
order. So for top-1 the prediction is ``np.argmax`` (first maximum). The rule is neither optimistic nor
pessimistic; ties between float scores of a trained network are practically absent.
"""

from __future__ import annotations

import numpy as np
import torch

from severe.errors import SevereError

__all__ = ["label_ranks", "video_accuracy", "knn_votes", "knn_classify"]


def _check_scores_labels(scores: np.ndarray, labels: np.ndarray, num_classes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[1] != num_classes:
        raise SevereError(f"{what}: scores must have shape [N, {num_classes}], got {list(scores.shape)}")
    if labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise SevereError(f"{what}: labels must have shape [{scores.shape[0]}], got {list(labels.shape)}")
    if scores.shape[0] == 0:
        raise SevereError(f"{what}: no test items (N = 0)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise SevereError(f"{what}: labels must be integers, got dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SevereError(f"{what}: label {int(labels[i])} of item {i} is outside [0, {num_classes - 1}]")
    if not np.isfinite(scores).all():
        i = int(np.flatnonzero(~np.isfinite(scores).all(axis=1))[0])
        raise SevereError(f"{what}: non-finite score for item {i}; the model produced NaN/inf")
    return scores, labels.astype(np.int64)


def label_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each item's label under the tie rule of this module (0 = top-1 correct)."""
    true = scores[np.arange(len(labels)), labels][:, None]
    higher = (scores > true).sum(axis=1)
    tied_before = ((scores == true) & (np.arange(scores.shape[1])[None, :] < labels[:, None])).sum(axis=1)
    return (higher + tied_before).astype(np.int64)


def video_accuracy(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Video@1, Video@5 and mean-class accuracy of aggregated per-video scores.

    scores: [N, num_classes] (e.g. softmax probabilities averaged over the clips of each video);
    labels: [N] integer class ids. Returns
      ``video_top1``, ``video_top5`` (fractions; top-5 uses k = min(5, num_classes)),
      ``mean_class_accuracy`` (mean over the classes with at least one test video of their top-1
      accuracy), ``classes_evaluated`` (how many classes that mean covers), ``classes_absent`` (sorted
      label-space ids without a test video), ``per_class_top1`` (list of length num_classes, None for an
      absent class) and ``num_videos``.
    """
    scores, labels = _check_scores_labels(scores, labels, num_classes, "video_accuracy")
    ranks = label_ranks(scores, labels)
    top1 = ranks < 1
    counts = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels, weights=top1.astype(np.float64), minlength=num_classes)
    present = counts > 0
    per_class = [float(hits[c] / counts[c]) if present[c] else None for c in range(num_classes)]
    return {
        "video_top1": float(top1.mean()),
        "video_top5": float((ranks < min(5, num_classes)).mean()),
        "mean_class_accuracy": float(np.mean(hits[present] / counts[present])),
        "classes_evaluated": int(present.sum()),
        "classes_absent": [int(c) for c in np.flatnonzero(~present)],
        "per_class_top1": per_class,
        "num_videos": int(len(labels)),
    }


def _nearest(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k similarities per row; among equal similarities the lower training index wins."""
    kth = torch.topk(sim, k, dim=1).values[:, -1:]
    candidates = sim >= kth
    idx = torch.empty(sim.shape[0], k, dtype=torch.long)
    exact = candidates.sum(dim=1) == k
    if exact.any():  # the k-set is unique: take it in index order
        idx[exact] = candidates[exact].nonzero()[:, 1].view(-1, k)
    for row in (~exact).nonzero().flatten().tolist():  # ties at the k-th value: stable sort
        idx[row] = torch.sort(sim[row], descending=True, stable=True).indices[:k]
    return torch.gather(sim, 1, idx), idx


def knn_votes(
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    test_feats: np.ndarray,
    k: int,
    *,
    num_classes: int,
    temperature: float = 0.07,
    chunk_size: int = 256,
) -> np.ndarray:
    """SVT/DINO-style weighted kNN votes [N_test, num_classes].

    Features are L2-normalised, similarity is cosine, each of the k most similar training items votes
    exp(sim / temperature) for its class. Among training items with exactly equal similarity at the k-th
    place, the lower training index is taken. Computed in float64.
    """
    train = torch.as_tensor(np.asarray(train_feats), dtype=torch.float64)
    test = torch.as_tensor(np.asarray(test_feats), dtype=torch.float64)
    labels = np.asarray(train_labels)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise SevereError(f"knn: features must be [N, D] with equal D, got train {list(train.shape)} and test {list(test.shape)}")
    if labels.shape != (train.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise SevereError(f"knn: train_labels must be {train.shape[0]} integers, got shape {list(labels.shape)} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise SevereError(f"knn: train labels must be in [0, {num_classes - 1}], got range [{labels.min()}, {labels.max()}]")
    if not 1 <= k <= train.shape[0]:
        raise SevereError(f"knn: k = {k} must be in [1, {train.shape[0]}] (number of training items)")
    if temperature <= 0:
        raise SevereError(f"knn: temperature must be > 0, got {temperature}")
    for name, feats in (("train", train), ("test", test)):
        norms = feats.norm(dim=1)
        if not torch.isfinite(feats).all() or (norms == 0).any():
            raise SevereError(f"knn: {name} features contain NaN/inf or an all-zero vector; cannot L2-normalise")
    train = train / train.norm(dim=1, keepdim=True)
    test = test / test.norm(dim=1, keepdim=True)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels, dtype=torch.long), num_classes).to(torch.float64)
    votes = torch.empty(test.shape[0], num_classes, dtype=torch.float64)
    for start in range(0, test.shape[0], chunk_size):
        sim, idx = _nearest(test[start:start + chunk_size] @ train.T, k)
        weights = (sim / temperature).exp()
        votes[start:start + chunk_size] = torch.einsum("nk,nkc->nc", weights, onehot[idx])
    return votes.numpy()


def knn_classify(
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    test_feats: np.ndarray,
    k: int,
    *,
    num_classes: int,
    temperature: float = 0.07,
) -> np.ndarray:
    """Top-1 class of the kNN votes (see ``knn_votes``); equal vote totals go to the lower class id."""
    votes = knn_votes(train_feats, train_labels, test_feats, k, num_classes=num_classes, temperature=temperature)
    return votes.argmax(axis=1).astype(np.int64)
