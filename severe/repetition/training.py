"""The state-machine training loop of UCF-RC (docs/tasks.md §3.5).

Per batch of training items, every item carries a state (lp, mp, rp). Up to ``max_inner_steps`` (11)
times: build the inputs of the current states, compute targets and loss, one optimiser step; then move
every state: mp advances by ``length / U(5, 20)`` (at least 1), the new previous/next lengths are
``current x anchor x exp(box)`` of each stream's best-scoring anchor (box clamped to +-2), lp and rp are
recomputed around the new mp. A state that fails (a cycle shorter than 4 frames) or runs past the end is
re-initialised. The batch ends when every item has reached the end once, or after the last inner step.
Training-time counts (MAE/OBO of the running estimate) are logged only.

Initial state of an item of length L with count c and first next-cycle estimate n0 (= ``next[0]``):
base = n0 (or L / c when n0 = -1); lp = int(U * base); the length is, with p 0.25, base x 2^U(-1, 1);
with p 0.25, base x (2^r + U(-0.05, 0.05)), r in {-1, 0, 1}; with p 0.5, one of the 30 inference scales
L x 0.03 x (0.35 / 0.03)^(k / 29), k = 0..29 (the original drew k from 0..30); mp = lp + int(length - 1)
(clamped as in the original), rp = mp + (mp - lp + 1); redrawn until 0 < rp < L.

Randomness: the items' states draw from ``default_rng([seed, tag, epoch, item index])``, the epoch order
from ``[seed, tag, epoch]``, flips from the dataset's (seed, epoch, item) streams: nothing depends on
earlier epochs, the number of loader workers or the batch composition, so a resumed run ends with the
same weights as an uninterrupted one (CPU).

The engine's ``Trainer`` runs the epochs (``RepetitionTrainer``: checkpoints, resume, logs, non-finite
losses); this module holds the state machine, its epoch order (``EpochBatches``) and its per-batch step
(``StateMachineStep``, a ``BatchStep`` taking up to ``max_inner_steps`` optimiser steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from severe.engine.distributed import DistContext
from severe.engine.optim import ConstantLR, OptimizerSpec
from severe.engine.seeding import WorkerSeeder
from severe.engine.trainer import LAST_CHECKPOINT, BatchStep, StepContext, Trainer
from severe.errors import SevereError
from severe.repetition.data import TrainSegments, collate_list
from severe.repetition.inputs import InputBuilder
from severe.repetition.targets import ANCHORS, repetition_loss, state_targets

__all__ = ["LAST_CHECKPOINT", "StateMachine", "EpochBatches", "StateMachineStep", "RepetitionTrainer", "epoch_batches"]

_TAG_ORDER, _TAG_STATE = 31, 32


@dataclass(frozen=True)
class StateMachine:
    """The rules of the training states (defaults: SEVERE)."""

    anchors: tuple[float, ...] = ANCHORS
    iou_threshold: float = 0.5
    box_weight: float = 50.0
    box_clamp: float = 2.0
    step_divisor: tuple[float, float] = (5.0, 20.0)
    max_inner_steps: int = 11
    num_scales: int = 30
    min_scale: float = 0.03
    max_scale: float = 0.35

    def describe(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def draw_initial(rng: np.random.Generator, first_next: int, count: int, length: int, sm: StateMachine) -> tuple[int, int]:
    """One draw of (lp, mp) for an item (see the module docstring)."""
    L = float(length)
    rp2 = L / count - 1 if first_next == -1 else float(first_next) - 1
    base = rp2 + 1
    lp: float = int(rng.random() * base)
    magic = rng.random()
    if magic < 0.25:
        seg = base * 2.0 ** ((rng.random() - 0.5) * 2)
    elif magic > 0.75:
        r = int(rng.integers(-1, 2))
        seg = base * (2.0 ** r + (rng.random() - 0.5) * 0.1)
    else:
        k = int(rng.integers(0, sm.num_scales))
        seg = L * sm.min_scale * (sm.max_scale / sm.min_scale) ** (k / (sm.num_scales - 1))
    rp: float = max(lp + int(seg - 1), lp)
    if rp >= L:
        lp, rp = 0, L / count - 1
    if rp * 2 + 1 >= L:
        lp, rp = 0, L / 2 - 1
    return int(lp), int(rp)


def initial_state(rng: np.random.Generator, first_next: int, count: int, length: int, sm: StateMachine,
                  max_draws: int = 1000) -> tuple[int, int, int]:
    """(lp, mp, rp) with 0 < rp < length, redrawn as the original did."""
    for _ in range(max_draws):
        lp, mp = draw_initial(rng, first_next, count, length, sm)
        rp = mp + (mp - lp + 1)
        if rp != 0 and rp < length:
            return lp, mp, rp
    raise SevereError(f"no valid initial state for a training segment of {length} frames with count {count}")


def best_action(prob: np.ndarray, box: np.ndarray, anchors: Sequence[float], clamp: float) -> float:
    """anchor x exp(box) of the highest-probability anchor (first one on ties)."""
    k = int(np.argmax(prob))
    return float(anchors[k]) * math.exp(float(np.clip(box[k], -clamp, clamp)))


def advance(state: tuple[int, int, int], action1: float, action2: float, step: int, length: int
            ) -> tuple[tuple[int, int, int], bool, bool]:
    """(new state, done, fail): mp += step, lengths scaled by the actions."""
    lp, mp, rp = state
    seg1, seg2 = (mp - lp + 1) * action1, (rp - mp) * action2
    mp = int(mp + step)
    lp, rp = int(mp - seg1 + 1), int(mp + seg2)
    return (lp, mp, rp), mp >= length, (mp - lp + 1) < 4 or (rp - mp) < 4


@dataclass
class Track:
    """One item's state and its running count estimate (logs only)."""

    item: dict
    rng: np.random.Generator
    state: tuple[int, int, int]
    pre_count: float = 0.0
    count: float = 0.0
    reached_end: bool = False

    @property
    def length(self) -> int:
        return int(self.item["length"])


def new_track(item: dict, seed: int, epoch: int, sm: StateMachine) -> Track:
    rng = np.random.default_rng([seed, _TAG_STATE, epoch, int(item["index"])])
    nxt = item["next"]
    first = int(nxt[0]) if len(nxt) else -1
    return Track(item, rng, initial_state(rng, first, int(item["count"]), int(item["length"]), sm))


def move_track(t: Track, prob1: np.ndarray, box1: np.ndarray, prob2: np.ndarray, box2: np.ndarray, sm: StateMachine) -> None:
    """Advance one item after an optimiser step (re-initialise on failure or at the end)."""
    L = t.length
    lo, hi = sm.step_divisor
    step = int(max(L / (lo + t.rng.random() * (hi - lo)), 1))
    a1 = best_action(prob1, box1, sm.anchors, sm.box_clamp)
    a2 = best_action(prob2, box2, sm.anchors, sm.box_clamp)
    state, done, fail = advance(t.state, a1, a2, step, L)
    if fail or done:
        nxt = t.item["next"]
        state = initial_state(t.rng, int(nxt[0]) if len(nxt) else -1, int(t.item["count"]), L, sm)
        t.pre_count = 0.0
    else:
        t.pre_count += step / float(state[1] - state[0] + 1)
    t.state = state
    t.count = t.pre_count + float(L - state[0] + 1e-6) / float(state[1] - state[0] + 1)
    t.reached_end = t.reached_end or done


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, max_batches: int, world_size: int = 1) -> list[np.ndarray]:
    """The epoch's global batches of item indices (shuffled from (seed, epoch); last partial batch kept
    unless it has fewer items than processes)."""
    perm = np.random.default_rng([seed, _TAG_ORDER, epoch]).permutation(n)
    batches = [perm[k:k + batch_size] for k in range(0, n, batch_size)][:max_batches]
    return [b for b in batches if len(b) >= world_size]


class EpochBatches:
    """The engine's ``TrainLoader`` for the state machine: ``epoch_batches`` order, each global batch split
    over the processes (``np.array_split``), items collated as lists."""

    def __init__(self, dataset: TrainSegments, batch_size: int, *, seed: int, max_batches: int, ctx: DistContext,
                 num_workers: int = 0) -> None:
        if batch_size < ctx.world_size:
            raise SevereError(f"TRAIN.BATCH_SIZE {batch_size} is smaller than the number of processes {ctx.world_size}")
        self.dataset, self.batch_size, self.seed, self.max_batches = dataset, int(batch_size), int(seed), int(max_batches)
        self.ctx, self.num_workers = ctx, num_workers

    def _batches(self, epoch: int) -> list[np.ndarray]:
        return epoch_batches(len(self.dataset), self.batch_size, self.seed, epoch, self.max_batches, self.ctx.world_size)

    def __len__(self) -> int:  # the same every epoch (only the last batch may be short)
        return len(self._batches(0))

    def for_epoch(self, epoch: int) -> DataLoader:
        mine = [np.array_split(b, self.ctx.world_size)[self.ctx.rank].tolist() for b in self._batches(epoch)]
        self.dataset.set_epoch(epoch)
        return DataLoader(self.dataset, batch_sampler=mine, num_workers=self.num_workers, collate_fn=collate_list,
                          worker_init_fn=WorkerSeeder(self.seed, self.ctx.rank, epoch) if self.num_workers else None,
                          persistent_workers=False)


def _add(sums: dict[str, float], **kv: float) -> None:
    for k, v in kv.items():
        sums[k] = sums.get(k, 0.0) + float(v)


class StateMachineStep(BatchStep):
    """One batch of the state machine (module docstring): up to ``max_inner_steps`` optimiser steps, the
    items' states moving between them. Returns sums for the epoch record."""

    def __init__(self, builder: InputBuilder, machine: StateMachine, seed: int) -> None:
        self.builder, self.machine, self.seed = builder, machine, int(seed)
        self.failed: list[str] = []  # this process's undecodable videos in the current epoch

    def begin_epoch(self, epoch: int) -> None:
        self.failed = []

    def __call__(self, net: nn.Module, items: list[dict], ctx: StepContext) -> dict[str, float]:
        sm = self.machine
        sums: dict[str, float] = {}
        for item in items:
            self.failed += item["failed"]
            _add(sums, decode_failures=len(item["failed"]))
        tracks = [new_track(item, self.seed, ctx.epoch, sm) for item in items]
        frames = [item["frames"] for item in items]
        pre, nxt = [item["pre"] for item in items], [item["next"] for item in items]
        n, steps = len(items), 0
        while True:
            states = [t.state for t in tracks]
            x = self.builder.batch(frames, states).to(ctx.device, non_blocking=True)
            targets = state_targets(states, pre, nxt, sm.anchors, sm.iou_threshold).to(ctx.device)
            with ctx.autocast():
                out = net(x)
            loss, loss_cls, loss_box = repetition_loss(out, targets, sm.box_weight)
            ctx.optimize(loss)
            _add(sums, loss_sum=loss.item() * n, loss_cls_sum=loss_cls.item() * n, loss_box_sum=loss_box.item() * n,
                 step_items=n)
            cls1, box1, cls2, box2 = (o.detach().float().cpu() for o in out)
            prob1 = torch.softmax(cls1, dim=1)[:, 1].numpy()
            prob2 = torch.softmax(cls2, dim=1)[:, 1].numpy()
            box1, box2 = box1.numpy(), box2.numpy()
            for j, t in enumerate(tracks):
                move_track(t, prob1[j], box1[j], prob2[j], box2[j], sm)
            steps += 1
            all_ended = all(t.reached_end for t in tracks)
            if steps >= sm.max_inner_steps or not ctx.any_rank(not all_ended):
                break
        for t in tracks:
            c = t.count if t.count != 0 else t.length / float(t.state[1] - t.state[0] + 1)
            g = float(t.item["count"])
            _add(sums, mae_sum=abs(c - g) / g, obo_sum=float(abs(c - g) <= 1), items=1)
        _add(sums, batches_steps=steps, batches=1)
        return sums

    def epoch_record(self, s: dict[str, float]) -> dict:
        step_items, items = max(s.get("step_items", 0.0), 1.0), max(s.get("items", 0.0), 1.0)
        return {
            "samples": int(s.get("items", 0)),
            "train_loss": s.get("loss_sum", 0.0) / step_items, "train_loss_cls": s.get("loss_cls_sum", 0.0) / step_items,
            "train_loss_box": s.get("loss_box_sum", 0.0) / step_items,
            "train_mae": s.get("mae_sum", 0.0) / items, "train_obo": s.get("obo_sum", 0.0) / items,
            "inner_steps_mean": s.get("batches_steps", 0.0) / max(s.get("batches", 0.0), 1.0),
            "decode_failures": int(s.get("decode_failures", 0)), "failed_videos": sorted(set(self.failed))[:20],
        }


class RepetitionTrainer(Trainer):
    """The engine's Trainer set up for the state machine: Adam at a constant lr, ``EpochBatches`` order,
    ``StateMachineStep`` per batch; the state-machine settings, item table and ``max_batches`` must match
    on resume."""

    def __init__(self, model: nn.Module, dataset: TrainSegments, *, run_dir: str | Path, builder: InputBuilder,
                 machine: StateMachine, epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
                 max_batches: int = 1000, num_workers: int = 0, dist: DistContext | None = None, amp: str = "off",
                 checkpoint_every: int = 0, progress: bool = True, console: bool = True,
                 items_sha256: str = "") -> None:
        ctx = dist or DistContext()
        super().__init__(
            model, dataset, run_dir=run_dir, epochs=int(epochs), global_batch_size=int(batch_size),
            optimizer=OptimizerSpec("adam", weight_decay=weight_decay), schedule=ConstantLR(lr), seed=int(seed),
            step_fn=StateMachineStep(builder, machine, seed),
            loader=EpochBatches(dataset, batch_size, seed=seed, max_batches=max_batches, ctx=ctx, num_workers=num_workers),
            setup_extra={"max_batches": int(max_batches), "items_sha256": items_sha256, "settings": machine.describe()},
            num_workers=num_workers, dist=ctx, amp=amp, checkpoint_every=checkpoint_every, progress=progress,
            console=console,
        )
