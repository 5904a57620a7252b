"""The state-machine training loop of UCF-RC (tasks.md §3.5).

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

Run directory: ``checkpoint_last.pt`` (model, optimiser, scaler, epoch, history, setup, RNG states; atomic,
every epoch), ``checkpoint_eNNN.pt`` (model weights only, every ``checkpoint_every`` epochs),
``metrics.jsonl`` and ``train.log`` (append-only).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from severe.engine.checkpointing import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from severe.engine.distributed import DistContext, all_reduce_sum, any_rank, broadcast_buffers, unwrap_model, wrap_model
from severe.engine.logger import RunLogger, read_jsonl
from severe.engine.runtime import resolve_runtime
from severe.engine.seeding import WorkerSeeder, configure_determinism, seed_epoch
from severe.errors import SevereError
from severe.repetition.data import TrainSegments, collate_list
from severe.repetition.inputs import InputBuilder
from severe.repetition.targets import ANCHORS, repetition_loss, state_targets

LAST_CHECKPOINT = "checkpoint_last.pt"
_TAG_ORDER, _TAG_STATE = 31, 32
_RESUME_KEYS = ("seed", "epochs", "batch_size", "world_size", "lr", "weight_decay", "max_batches", "items_sha256",
                "settings")


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


@dataclass
class _Sums:
    values: dict[str, float] = field(default_factory=dict)

    def add(self, **kv: float) -> None:
        for k, v in kv.items():
            self.values[k] = self.values.get(k, 0.0) + float(v)


class RepetitionTrainer:
    """Trains a :class:`~severe.repetition.model.RepetitionCounter` with the state machine (module docstring)."""

    def __init__(self, model: nn.Module, dataset: TrainSegments, *, run_dir: str | Path, builder: InputBuilder,
                 machine: StateMachine, epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
                 max_batches: int = 1000, num_workers: int = 0, dist: DistContext | None = None, amp: str = "off",
                 checkpoint_every: int = 0, progress: bool = True, console: bool = True,
                 items_sha256: str = "") -> None:
        self.ctx = dist or DistContext()
        self.run_dir = Path(run_dir)
        self.dataset, self.builder, self.machine = dataset, builder, machine
        self.epochs, self.batch_size, self.seed, self.max_batches = int(epochs), int(batch_size), int(seed), int(max_batches)
        self.num_workers, self.checkpoint_every, self.progress, self.console = num_workers, checkpoint_every, progress, console
        if self.batch_size < self.ctx.world_size:
            raise SevereError(f"TRAIN.BATCH_SIZE {batch_size} is smaller than the number of processes {self.ctx.world_size}")
        self.runtime = resolve_runtime(self.ctx.device, amp)
        determinism = configure_determinism(self.ctx.device)
        self.model = model.to(self.ctx.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=self.runtime.grad_scaling)
        self.net = wrap_model(self.model, self.ctx)
        self.setup = {
            "seed": self.seed, "epochs": self.epochs, "batch_size": self.batch_size, "world_size": self.ctx.world_size,
            "lr": lr, "weight_decay": weight_decay, "max_batches": self.max_batches, "items_sha256": items_sha256,
            "settings": machine.describe(), "num_workers": num_workers, "train_items": len(dataset),
            "batches_per_epoch": len(epoch_batches(len(dataset), self.batch_size, seed, 0, self.max_batches,
                                                   self.ctx.world_size)),
            "optimizer": {"kind": "adam", "lr": lr, "weight_decay": weight_decay, "schedule": "constant"},
            "runtime": self.runtime.record, "determinism": determinism,
        }
        self.log: RunLogger | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / LAST_CHECKPOINT

    # ------------------------------------------------------------------------------------------ fit
    def fit(self, resume: bool = False, stop_after_epoch: int | None = None) -> list[dict]:
        """Train to the last epoch (or stop after epoch index ``stop_after_epoch``); returns the history."""
        start, history = self._resume() if resume else self._fresh()
        self.log = RunLogger(self.run_dir, enabled=self.ctx.is_main, console=self.console)
        try:
            if resume:
                self._backfill(history)
                self.log.record("resume", from_epoch=start)
                self.log.info(f"resumed {self.checkpoint_path} at epoch {start + 1}")
            else:
                self.log.record("start", **self.setup)
                self.log.info(f"repetition counting: {self.epochs} epochs, {self.setup['batches_per_epoch']} batches/epoch, "
                              f"{len(self.dataset)} items, runtime {self.runtime.record}")
            for epoch in range(start, self.epochs):
                t0 = time.perf_counter()
                record = {"epoch": epoch, **self.train_one_epoch(epoch)}
                record["timing"] = {"epoch_seconds": round(time.perf_counter() - t0, 3)}
                history.append(record)
                self._save(epoch, history)
                self.log.record("epoch", **record)
                self.log.info(self._summary(record))
                if stop_after_epoch is not None and epoch >= stop_after_epoch:
                    break
            return history
        finally:
            self.log.close()

    def _loader(self, epoch: int) -> DataLoader:
        batches = epoch_batches(len(self.dataset), self.batch_size, self.seed, epoch, self.max_batches, self.ctx.world_size)
        mine = [np.array_split(b, self.ctx.world_size)[self.ctx.rank].tolist() for b in batches]
        self.dataset.set_epoch(epoch)
        return DataLoader(self.dataset, batch_sampler=mine, num_workers=self.num_workers, collate_fn=collate_list,
                          worker_init_fn=WorkerSeeder(self.seed, self.ctx.rank, epoch) if self.num_workers else None,
                          persistent_workers=False)

    # -------------------------------------------------------------------------------------- one epoch
    def train_one_epoch(self, epoch: int) -> dict:
        self.net.train()
        seed_epoch(self.seed, epoch, self.ctx.rank)
        loader = self._loader(epoch)
        sums = _Sums()
        failed: list[str] = []
        lr = self.optimizer.param_groups[0]["lr"]
        bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{self.epochs}", leave=False,
                   disable=not (self.progress and self.ctx.is_main))
        with bar:
            for it, items in enumerate(bar):
                for item in items:
                    failed += item["failed"]
                    sums.add(decode_failures=len(item["failed"]))
                stats = self.train_batch(items, epoch, it)
                sums.add(**stats)
                bar.set_postfix(loss=f"{stats['loss_sum'] / max(stats['step_items'], 1):.4f}", steps=int(stats["batches_steps"]))
        broadcast_buffers(self.model, self.ctx)
        names = sorted(sums.values)
        reduced = all_reduce_sum(torch.tensor([sums.values[n] for n in names], dtype=torch.float64), self.ctx)
        s = dict(zip(names, reduced.tolist()))
        step_items, items = max(s.get("step_items", 0.0), 1.0), max(s.get("items", 0.0), 1.0)
        return {
            "lr": lr, "batches": len(loader), "items": int(s.get("items", 0)),
            "train_loss": s.get("loss_sum", 0.0) / step_items, "train_loss_cls": s.get("loss_cls_sum", 0.0) / step_items,
            "train_loss_box": s.get("loss_box_sum", 0.0) / step_items,
            "train_mae": s.get("mae_sum", 0.0) / items, "train_obo": s.get("obo_sum", 0.0) / items,
            "inner_steps_mean": s.get("batches_steps", 0.0) / max(len(loader) * self.ctx.world_size, 1),
            "decode_failures": int(s.get("decode_failures", 0)), "failed_videos": sorted(set(failed))[:20],
        }

    def train_batch(self, items: list[dict], epoch: int, it: int) -> dict:
        """The state machine on one batch; returns sums for the epoch record."""
        sm, dev = self.machine, self.ctx.device
        tracks = [new_track(item, self.seed, epoch, sm) for item in items]
        frames = [item["frames"] for item in items]
        pre, nxt = [item["pre"] for item in items], [item["next"] for item in items]
        sums = _Sums()
        steps = 0
        while True:
            states = [t.state for t in tracks]
            x = self.builder.batch(frames, states).to(dev, non_blocking=True)
            targets = state_targets(states, pre, nxt, sm.anchors, sm.iou_threshold).to(dev)
            with self.runtime.autocast():
                out = self.net(x)
            loss, loss_cls, loss_box = repetition_loss(out, targets, sm.box_weight)
            if any_rank(not bool(torch.isfinite(loss.detach())), self.ctx):
                self._fail_nonfinite(epoch, it, steps, loss)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            n = len(items)
            sums.add(loss_sum=loss.item() * n, loss_cls_sum=loss_cls.item() * n, loss_box_sum=loss_box.item() * n, step_items=n)
            cls1, box1, cls2, box2 = (o.detach().float().cpu() for o in out)
            prob1 = torch.softmax(cls1, dim=1)[:, 1].numpy()
            prob2 = torch.softmax(cls2, dim=1)[:, 1].numpy()
            box1, box2 = box1.numpy(), box2.numpy()
            for j, t in enumerate(tracks):
                move_track(t, prob1[j], box1[j], prob2[j], box2[j], sm)
            steps += 1
            all_ended = all(t.reached_end for t in tracks)
            if steps >= sm.max_inner_steps or not any_rank(not all_ended, self.ctx):
                break
        for t in tracks:
            c = t.count if t.count != 0 else t.length / float(t.state[1] - t.state[0] + 1)
            g = float(t.item["count"])
            sums.add(mae_sum=abs(c - g) / g, obo_sum=float(abs(c - g) <= 1), items=1)
        sums.add(batches_steps=steps)
        return sums.values

    # ------------------------------------------------------------------------------------- internals
    def _fail_nonfinite(self, epoch: int, it: int, step: int, loss: torch.Tensor) -> None:
        kept = (f"the last good checkpoint {self.checkpoint_path} was left untouched" if self.checkpoint_path.exists()
                else "no checkpoint was written")
        if self.log is not None:
            self.log.record("error", kind="nonfinite_loss", epoch=epoch, batch=it, inner_step=step, loss=str(loss.item()))
        raise SevereError(f"non-finite loss at epoch {epoch} (0-based), batch {it}, inner step {step}; training stopped "
                          f"and {kept}. Lower the learning rate or check the inputs.")

    def _save(self, epoch: int, history: list[dict]) -> None:
        if self.ctx.is_main:
            model_state = unwrap_model(self.net).state_dict()
            save_checkpoint(self.checkpoint_path, {
                "epoch": epoch, "model": model_state, "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": capture_rng_state(), "history": history, "setup": self.setup,
            })
            if self.checkpoint_every and (epoch + 1) % self.checkpoint_every == 0:
                save_checkpoint(self.run_dir / f"checkpoint_e{epoch:03d}.pt", {"epoch": epoch, "model": model_state})
        if self.ctx.is_distributed:
            torch.distributed.barrier()

    def _fresh(self) -> tuple[int, list[dict]]:
        if self.checkpoint_path.exists():
            raise SevereError(f"run directory {self.run_dir} already holds {LAST_CHECKPOINT}; resume it or choose a new one")
        return 0, []

    def _resume(self) -> tuple[int, list[dict]]:
        ckpt = load_checkpoint(self.checkpoint_path)
        for key in _RESUME_KEYS:
            if ckpt["setup"].get(key) != self.setup[key]:
                raise SevereError(f"cannot resume {self.checkpoint_path}: setting '{key}' was {ckpt['setup'].get(key)!r} "
                                  f"and is now {self.setup[key]!r}; resume with the original settings")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"])
        return int(ckpt["epoch"]) + 1, list(ckpt["history"])

    def _backfill(self, history: list[dict]) -> None:
        logged = {r["epoch"] for r in read_jsonl(self.log.metrics_path, "epoch")}
        for record in history:
            if record["epoch"] not in logged:
                self.log.record("epoch", **{**record, "timing": {**record.get("timing", {}), "backfilled": True}})

    def _summary(self, r: dict) -> str:
        return (f"epoch {r['epoch'] + 1}/{self.epochs}: loss {r['train_loss']:.4f} (cls {r['train_loss_cls']:.4f}, "
                f"box {r['train_loss_box']:.4f}), train MAE {r['train_mae']:.3f}, OBO {r['train_obo']:.3f}, "
                f"{r['inner_steps_mean']:.1f} steps/batch, {r['timing']['epoch_seconds']:.1f}s")
