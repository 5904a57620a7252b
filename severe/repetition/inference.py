"""Counting a test segment of L frames (docs/tasks.md §3.6), for a batch of videos in lockstep.

The network is reached through a *scorer*: ``scorer(states [B, 3] float) -> StreamScores`` with, per
video and stream, the probability that the true cycle length is close to anchor x current length and
the regression output (both [B, A]). :class:`ModelScorer` wraps a :class:`RepetitionCounter`; tests
plug in an oracle. A state (lp, mp, rp) means: previous cycle [lp, mp], next cycle [mp + 1, rp].

1. Coarse search: for k = 0..K-1 the half-length ``h_k = L * min * (max / min)^(k / (K-1))``, state
   (L/2 - h_k, L/2, L/2 + h_k + 1); stream 1, anchor 1.0 only, box clamped to +-0.5; candidate
   ``h_k * exp(box)``; the highest-scoring candidate with 4 <= candidate < L / min_cycles is kept
   (truncated to an integer: ``period``; the cycle length it stands for is period + 1).
2. Refinement (x4): the same at ``period``; period <- round(0.5 * period + 0.5 * candidate) when the
   candidate is valid.
3. Hierarchy: 32 positions ``mp_i = int(L / 33 * (i + 0.5))`` with state (mp - period, mp, mp + period + 1);
   levels 1-4 visit 2, 4, 8, 16 positions with 4, 2, 1, 1 iterations; an iteration takes the best anchor
   of each stream, new length = current x anchor x exp(box) clipped to [4, L / min_cycles], states
   smoothed with weight 0.5; after a position, its estimate is propagated to the positions it covers.
4. Count over the final positions whose context window lies inside [0, L):
   ``round(L * mean_i(0.5 / left_i + 0.5 / right_i))``; without any, ``round(L / (period + 1))``.

Number conventions follow the original code: integer state arrays (truncation toward zero when a float
is stored) and Python's round-half-even. 30 + 4 + 8 + 8 + 8 + 16 = 74 scorer calls per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from severe.repetition.inputs import InputBuilder
from severe.repetition.targets import ANCHORS

MERGE_LEVEL = 5  # 2^5 = 32 positions; levels 1..4 are evaluated
ITERS_PER_LEVEL = {1: 4, 2: 2, 3: 1, 4: 1}


@dataclass(frozen=True)
class StreamScores:
    """Per video: positive-class probability and regression of each anchor, for both streams ([B, A])."""

    prob1: np.ndarray
    box1: np.ndarray
    prob2: np.ndarray
    box2: np.ndarray


Scorer = Callable[[np.ndarray], StreamScores]


@dataclass(frozen=True)
class InferenceSettings:
    anchors: tuple[float, ...] = ANCHORS
    num_scales: int = 30
    min_scale: float = 0.03
    max_scale: float = 0.35
    refine_iters: int = 4
    merge_weight: float = 0.5
    box_clamp: float = 0.5
    min_cycles: float = 2.0

    @property
    def unit_anchor(self) -> int:
        return list(self.anchors).index(1.0)


@dataclass(frozen=True)
class CountResult:
    count: int
    period: int  # cycle length - 1 from the period search
    valid_positions: int  # final positions used for the count (0 = fallback)
    rate: float  # mean frequency (repetitions per frame) over the valid positions, or 1 / (period + 1)

    @property
    def fallback(self) -> bool:
        return self.valid_positions == 0


def _trunc(x: np.ndarray) -> np.ndarray:
    """Store floats into an integer array the way numpy int arrays do (toward zero)."""
    return np.trunc(np.asarray(x, dtype=np.float64)).astype(np.int64)


def _round(x: np.ndarray) -> np.ndarray:
    """Python's round() (half to even) element-wise, as int64."""
    return np.rint(np.asarray(x, dtype=np.float64)).astype(np.int64)


def _states(lp, mp, rp) -> np.ndarray:
    return np.stack([np.asarray(lp, np.float64), np.asarray(mp, np.float64), np.asarray(rp, np.float64)], axis=1)


def period_search(scorer: Scorer, lengths: np.ndarray, s: InferenceSettings) -> np.ndarray:
    """Steps 1-2: the integer period (cycle length - 1) of every video; 0 when no candidate was valid."""
    L = np.asarray(lengths, dtype=np.float64)
    a = s.unit_anchor
    mid = L / 2
    best = np.full(len(L), -1e6)
    period = np.zeros(len(L), dtype=np.int64)
    for k in range(s.num_scales):
        half = L * s.min_scale * (s.max_scale / s.min_scale) ** (k / (s.num_scales - 1))
        out = scorer(_states(mid - half, mid, mid + half + 1))
        cand = half * np.exp(np.clip(out.box1[:, a], -s.box_clamp, s.box_clamp)) * s.anchors[a]
        score = out.prob1[:, a]
        ok = (score > best) & (cand >= 4) & (cand < L / s.min_cycles)
        best = np.where(ok, score, best)
        period = np.where(ok, _trunc(cand), period)
    for _ in range(s.refine_iters):
        out = scorer(_states(mid - period, mid, mid + period + 1))
        cand = period * np.exp(np.clip(out.box1[:, a], -s.box_clamp, s.box_clamp)) * s.anchors[a]
        ok = (cand >= 4) & (cand < L / s.min_cycles)
        period = np.where(ok, _round(period * (1 - s.merge_weight) + cand * s.merge_weight), period)
    return period


def _best_action(prob: np.ndarray, box: np.ndarray, anchors: np.ndarray, clamp: float) -> np.ndarray:
    k = np.argmax(prob, axis=1)  # first maximum, as the original's strict '>' scan
    rows = np.arange(len(k))
    return anchors[k] * np.exp(np.clip(box[rows, k], -clamp, clamp))


def _step(load, out: StreamScores, L: np.ndarray, s: InferenceSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hierarchy iteration: new (lp, mp, rp) from the best anchors; failed states keep theirs."""
    lp, mp, rp = load
    anchors = np.asarray(s.anchors, dtype=np.float64)
    act1 = _best_action(out.prob1, out.box1, anchors, s.box_clamp)
    act2 = _best_action(out.prob2, out.box2, anchors, s.box_clamp)
    cap = L / s.min_cycles
    seg1 = np.minimum(np.maximum(4.0, (mp - lp + 1) * act1), cap)
    seg2 = np.minimum(np.maximum(4.0, (rp - mp) * act2), cap)
    new_mp = mp.copy()
    new_lp = _trunc(new_mp - seg1 + 1)
    new_rp = _trunc(new_mp + seg2)
    fail = (new_mp - new_lp + 1 < 4) | (new_rp - new_mp < 4)
    return np.where(fail, lp, new_lp), new_mp, np.where(fail, rp, new_rp)


def count_repetitions(scorer: Scorer, lengths: Sequence[int], settings: InferenceSettings = InferenceSettings()
                      ) -> list[CountResult]:
    """Counts of a batch of segments of the given lengths (see the module docstring)."""
    s = settings
    L = np.asarray(lengths, dtype=np.float64)
    B, P = len(L), 2 ** MERGE_LEVEL
    period = period_search(scorer, L, s)
    w = s.merge_weight
    shape = (B, MERGE_LEVEL, P)
    mp, lpl, lpr, rpl, rpr = (np.zeros(shape, dtype=np.int64) for _ in range(5))
    mp[:, 0] = _trunc(L[:, None] / (P + 1) * (np.arange(P)[None, :] + 0.5))
    lpl[:, 0] = lpr[:, 0] = mp[:, 0] - period[:, None]
    rpl[:, 0] = rpr[:, 0] = mp[:, 0] + period[:, None] + 1
    last = MERGE_LEVEL - 1
    for l1 in range(1, MERGE_LEVEL):
        steps = 2 ** (MERGE_LEVEL - l1 - 1)
        for l2 in range(2 ** l1):
            pos = steps + 2 * steps * l2
            load = save = None
            for l3 in range(ITERS_PER_LEVEL[l1]):
                if l3 == 0:
                    load = (_round((lpl[:, l1 - 1, pos] + lpr[:, l1 - 1, pos]) / 2), mp[:, l1 - 1, pos].copy(),
                            _round((rpl[:, l1 - 1, pos] + rpr[:, l1 - 1, pos]) / 2))
                else:
                    load = (_round(save[0] * w + load[0] * (1 - w)), save[1].copy(), _round(save[2] * w + load[2] * (1 - w)))
                out = scorer(_states(*load))
                save = _step(load, out, L, s)
            lseg = save[0] * w + load[0] * (1 - w)
            rseg = save[2] * w + load[2] * (1 - w)
            centre = mp[:, l1 - 1, pos]
            for q in range(pos - steps, pos + steps):
                mp[:, l1, q] = mp[:, l1 - 1, q]
                lp_new = _trunc(mp[:, l1 - 1, q] + (lseg - centre))
                rp_new = _trunc(mp[:, l1 - 1, q] + (rseg - centre))
                if q < pos:  # positions left of the centre: this estimate is their right-hand one
                    lpr[:, l1, q], rpr[:, l1, q] = lp_new, rp_new
                    own = l1 <= 2 or l1 == last or l2 == 0
                    lpl[:, l1, q] = lp_new if own else lpl[:, l1 - 1, q]
                    rpl[:, l1, q] = rp_new if own else rpl[:, l1 - 1, q]
                else:
                    lpl[:, l1, q], rpl[:, l1, q] = lp_new, rp_new
                    own = l1 <= 2 or l1 == last or l2 == 2 ** l1 - 1
                    lpr[:, l1, q] = lp_new if own else lpr[:, l1 - 1, q]
                    rpr[:, l1, q] = rp_new if own else rpr[:, l1 - 1, q]
    m = mp[:, last]
    lp = _round((lpl[:, last] + lpr[:, last]) / 2)
    rp = _round((rpl[:, last] + rpr[:, last]) / 2)
    left, right = m - lp + 1, rp - m
    first = _trunc(lp - (m - lp + 1) * 1.0)
    end = _trunc(rp + (rp - m) * 1.0)
    # (left/right >= 1 always holds for states built by _step; it only guards the division)
    valid = (first >= 0) & (end < L[:, None]) & (left >= 1) & (right >= 1)
    results = []
    for b in range(B):
        v = valid[b]
        if v.any():
            rate = float(np.sum(0.5 / left[b, v] + 0.5 / right[b, v]) / v.sum())
        else:
            rate = 1.0 / float(period[b] + 1)
        results.append(CountResult(count=int(round(L[b] * rate)), period=int(period[b]), valid_positions=int(v.sum()),
                                   rate=rate))
    return results


class ModelScorer:
    """Scores states of a batch of letterboxed segments with a :class:`RepetitionCounter` (no gradients)."""

    def __init__(self, model: torch.nn.Module, builder: InputBuilder, segments: Sequence[torch.Tensor],
                 device: torch.device, autocast=None) -> None:
        self.model, self.builder, self.segments, self.device = model, builder, list(segments), device
        self.autocast = autocast
        self.calls = 0

    @torch.no_grad()
    def __call__(self, states: np.ndarray) -> StreamScores:
        self.calls += 1
        x = self.builder.batch(self.segments, [tuple(st) for st in states]).to(self.device)
        if self.autocast is not None:
            with self.autocast():
                cls1, box1, cls2, box2 = self.model(x)
        else:
            cls1, box1, cls2, box2 = self.model(x)

        def np64(t: torch.Tensor) -> np.ndarray:
            return t.float().cpu().numpy().astype(np.float64)

        return StreamScores(np64(torch.softmax(cls1.float(), dim=1)[:, 1]), np64(box1),
                            np64(torch.softmax(cls2.float(), dim=1)[:, 1]), np64(box2))
