"""The training loop shared by every task (torchvision-references style: read it top to bottom).

One ``Trainer`` owns one run directory:
  checkpoint_last.pt   model (bare state dict), optimiser, scaler, schedule, epoch, RNG states, history
  checkpoint_eNNN.pt   optional model weights of every ``checkpoint_every``-th epoch (epoch + model only)
  metrics.jsonl        append-only JSON lines: start/resume/epoch/error events
  train.log            append-only console log
  tensorboard/         optional

Semantics (docs/protocol.md §1.2-1.3, §5, docs/differences.md §D):
- an epoch is one pass over the training dataset (the dataset holds its K clips per video), last
  incomplete batch dropped; the lr comes from ``schedule.lr_at(epoch + iteration / iterations)`` and is
  set before every optimiser step;
- the reported model is the last epoch: nothing here looks at a test split. ``val_fn`` is the hook
  for an optional validation split carved from training data: its result is logged, never used to pick
  an epoch here;
- ``fit(resume=True)`` continues from checkpoint_last.pt and ends bit-identical (CPU) to an
  uninterrupted run, because every epoch re-derives its random streams from (seed, epoch, rank);
- a non-finite loss stops the run with a SevereError before anything is written: the last good
  checkpoint stays untouched.

Two kinds of per-batch step:
- a ``TrainStep`` function computes the loss of one micro-batch; the trainer takes the optimiser step
  (after ``accum_steps`` micro-batches);
- a ``BatchStep`` object takes one or more optimiser steps per batch itself, each through
  ``StepContext.optimize(loss)`` (repetition counting's state machine moves its items between steps).
  The trainer still owns the rest: lr, non-finite check, loss scaling, checkpoints, resume, logs.
A custom ``loader`` (``__len__`` and ``for_epoch(epoch)``) replaces the default ``EpochLoader`` when a
task has its own epoch order; ``setup_extra`` adds task settings that must match on resume.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from severe.engine.checkpointing import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from severe.engine.distributed import (
    DistContext,
    all_reduce_sum,
    any_rank,
    broadcast_buffers,
    per_process_batch,
    unwrap_model,
    wrap_model,
)
from severe.engine.freezing import backbone_digest, freeze_bn_statistics, prepare_mode
from severe.engine.loaders import EpochLoader
from severe.engine.logger import RunLogger, read_jsonl
from severe.engine.optim import LRSchedule, OptimizerSpec, build_optimizer, set_lr
from severe.engine.runtime import resolve_runtime
from severe.engine.seeding import configure_determinism, seed_epoch
from severe.errors import SevereError

__all__ = ["StepOutput", "classification_step", "BatchStep", "StepContext", "TrainLoader", "Trainer", "LAST_CHECKPOINT"]

LAST_CHECKPOINT = "checkpoint_last.pt"

# Settings that must match when resuming (anything else would silently change the run).
_RESUME_KEYS = ("seed", "epochs", "global_batch_size", "accum_steps", "world_size", "mode", "optimizer", "schedule")


@dataclass
class StepOutput:
    """What a training step returns: the mean loss of the micro-batch, its item count, and per-item sums
    to average over the epoch (e.g. {"top1": number of correct items} → ``train_top1``)."""

    loss: torch.Tensor
    count: int
    sums: dict[str, Any] = field(default_factory=dict)


TrainStep = Callable[[nn.Module, Any, torch.device, torch.memory_format], StepOutput]


@dataclass(frozen=True)
class StepContext:
    """What the trainer hands a ``BatchStep`` for one batch.

    optimize(loss): one optimiser step on ``loss`` — stops the run if it is not finite on any process,
    sets the batch's scheduled lr, then scales, back-propagates, steps and clears the gradients.
    any_rank(flag): True on every process if ``flag`` is True on any (loop conditions under DDP).
    """

    epoch: int
    iteration: int
    device: torch.device
    memory_format: torch.memory_format
    autocast: Callable[[], contextlib.AbstractContextManager]
    any_rank: Callable[[bool], bool]
    optimize: Callable[[torch.Tensor], None]


class BatchStep:
    """A per-batch step that drives its own optimiser steps (one or more per batch, see StepContext).

    ``__call__`` returns numbers to sum over the epoch; the trainer sums them over batches and processes
    and ``epoch_record`` turns the sums into the epoch record's fields (it must give ``samples``, the
    number of items trained). ``state_dict``/``load_state_dict``: state carried across epochs, saved in
    the checkpoint for resume (none by default). ``begin_epoch`` runs before every epoch's first batch.
    """

    def __call__(self, net: nn.Module, batch: Any, ctx: StepContext) -> dict[str, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def epoch_record(self, sums: dict[str, float]) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def begin_epoch(self, epoch: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class TrainLoader(Protocol):
    """A training loader (like ``EpochLoader``): ``for_epoch(e)`` gives epoch ``e``'s batches for this
    process, an iterable with ``len``; ``len(loader)`` is that number (the same every epoch)."""

    def __len__(self) -> int: ...

    def for_epoch(self, epoch: int) -> Iterable: ...


def classification_step(model: nn.Module, batch: Any, device: torch.device, memory_format: torch.memory_format) -> StepOutput:
    """Single-label classification: batch = (clips [B,C,T,H,W], labels [B], indices); cross-entropy (mean)."""
    clips, labels = batch[0], batch[1]
    clips = clips.to(device, non_blocking=True).contiguous(memory_format=memory_format)
    labels = labels.to(device, non_blocking=True)
    logits = model(clips)
    loss = F.cross_entropy(logits.float(), labels)
    return StepOutput(loss, labels.shape[0], {"top1": (logits.argmax(dim=1) == labels).sum()})


class Trainer:
    """Train ``model`` on ``train_dataset`` for ``epochs`` epochs; see the module docstring.

    mode: "finetune" or "linear" (``head_names`` = the head modules that train, e.g. ("head",)).
    freeze_bn_stats: every BatchNorm keeps its running statistics (eval mode) while its weights train.
    global_batch_size is split over processes and accumulation steps before the loader is built.
    amp ("off"/"bf16"/"fp16"), channels_last and compile take effect on CUDA only (recorded no-ops on CPU).
    step_fn computes the loss of one micro-batch (default: ``classification_step``), or is a ``BatchStep``
    that takes its own optimiser steps (then accum_steps must be 1).
    loader: a custom ``TrainLoader`` with the task's own epoch order (its batches are this process's
    share; global_batch_size is then recorded, not split); collate_fn and num_workers are for the default
    loader (num_workers is also recorded: pass the custom loader's).
    setup_extra: task settings recorded with the run and checked on resume like the trainer's own.
    val_fn(model, epoch) -> dict: optional validation hook, called on every rank with the bare model.
    """

    def __init__(
        self,
        model: nn.Module,
        train_dataset: Dataset,
        *,
        run_dir: str | os.PathLike,
        epochs: int,
        global_batch_size: int,
        optimizer: OptimizerSpec,
        schedule: LRSchedule,
        seed: int,
        mode: str = "finetune",
        head_names: Sequence[str] = (),
        freeze_bn_stats: bool = False,
        step_fn: TrainStep | BatchStep = classification_step,
        loader: TrainLoader | None = None,
        setup_extra: dict[str, Any] | None = None,
        collate_fn: Callable | None = None,
        num_workers: int = 0,
        accum_steps: int = 1,
        dist: DistContext | None = None,
        amp: str = "off",
        channels_last: bool = False,
        compile: bool = False,
        deterministic: bool = True,
        tensorboard: bool = False,
        progress: bool = True,
        console: bool = True,
        checkpoint_every: int = 0,
        val_fn: Callable[[nn.Module, int], dict] | None = None,
        find_unused_parameters: bool = False,
        log_every: int = 50,
    ) -> None:
        if epochs < 1:
            raise SevereError(f"epochs must be ≥ 1, got {epochs}")
        self.multi_step = isinstance(step_fn, BatchStep)
        if self.multi_step and accum_steps != 1:
            raise SevereError(f"accum_steps must be 1 with a step that takes its own optimiser steps, got {accum_steps}")
        self.ctx = dist or DistContext()
        self.run_dir = Path(run_dir)
        self.epochs, self.seed, self.accum_steps = epochs, seed, accum_steps
        self.schedule, self.step_fn, self.val_fn = schedule, step_fn, val_fn
        self.checkpoint_every, self.log_every, self.progress = checkpoint_every, log_every, progress
        self.head_names = tuple(head_names)
        # 1. per-process batch: decided before any loader exists (a custom loader splits its own batches)
        self.batch_per_process = None
        if loader is None:
            self.batch_per_process = per_process_batch(global_batch_size, self.ctx.world_size, accum_steps)
        # 2. device, determinism and speed flags
        self.runtime = resolve_runtime(self.ctx.device, amp, channels_last, compile)
        determinism = configure_determinism(self.ctx.device, deterministic)
        # 3. model: mode (freezing) first, then device/layout, optimiser over what still trains
        self.mode_record = prepare_mode(model, mode, self.head_names)
        if freeze_bn_stats:
            self.mode_record["bn_statistics_frozen"] = freeze_bn_statistics(model)
        self.model = model.to(self.ctx.device, memory_format=self.runtime.memory_format)
        self.optimizer = build_optimizer(self.model, optimizer, schedule.lr_at(0.0))
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=self.runtime.grad_scaling)
        net = wrap_model(self.model, self.ctx, find_unused_parameters)
        self.net = torch.compile(net) if self.runtime.compile else net
        # 4. data
        self.loader: TrainLoader = loader if loader is not None else EpochLoader(
            train_dataset,
            self.batch_per_process,
            seed=seed,
            ctx=self.ctx,
            num_workers=num_workers,
            collate_fn=collate_fn,
            pin_memory=self.ctx.device.type == "cuda",
        )
        self.setup = {
            "seed": seed,
            "epochs": epochs,
            "global_batch_size": global_batch_size,
            "batch_per_process": self.batch_per_process,
            "accum_steps": accum_steps,
            "world_size": self.ctx.world_size,
            "num_workers": num_workers,
            "mode": mode,
            "optimizer": optimizer.describe(),
            "schedule": schedule.describe(),
            "train_items": len(train_dataset),
            "iterations_per_epoch": len(self.loader),
            "runtime": self.runtime.record,
            "determinism": determinism,
            "mode_record": self.mode_record,
        }
        clash = sorted(set(setup_extra or {}) & set(self.setup))
        if clash:
            raise SevereError(f"setup_extra: keys {clash} are the trainer's own settings; rename them")
        self.setup.update(setup_extra or {})
        self.resume_keys = _RESUME_KEYS + tuple(setup_extra or {})
        self._console, self._tensorboard = console, tensorboard
        self.log: RunLogger | None = None
        self._notes: list[str] = []

    # ------------------------------------------------------------------------------------------ fit
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / LAST_CHECKPOINT

    def fit(self, resume: bool = False, stop_after_epoch: int | None = None) -> list[dict]:
        """Train to the last epoch (or stop after epoch index ``stop_after_epoch``); returns the epoch history."""
        start_epoch, history = self._resume() if resume else self._fresh_start()
        self.log = RunLogger(
            self.run_dir,
            enabled=self.ctx.is_main,
            console=self._console,
            tensorboard=self._tensorboard,
            purge_step=start_epoch * len(self.loader) if resume else None,
        )
        try:
            if resume:
                self._backfill_log(history)
                self.log.record("resume", from_epoch=start_epoch, notes=self._notes)
                self.log.info(f"resumed {self.checkpoint_path} at epoch {start_epoch}")
                for note in self._notes:
                    self.log.info(f"warning: {note}")
            else:
                self.log.record("start", **self.setup)
                self.log.info(f"training {self.setup['mode']} for {self.epochs} epochs, {len(self.loader)} iterations/epoch, runtime {self.runtime.record}")
            for epoch in range(start_epoch, self.epochs):
                t0 = time.perf_counter()
                record = {"epoch": epoch, **self.train_one_epoch(epoch)}
                if self.val_fn is not None:
                    record["val"] = self.val_fn(unwrap_model(self.net), epoch)
                if self.setup["mode"] == "linear":
                    record["backbone_unchanged"] = self._check_backbone(epoch)
                seconds = time.perf_counter() - t0
                record["timing"] = {"epoch_seconds": round(seconds, 3), "items_per_second": round(record["samples"] / seconds, 2)}
                history.append(record)
                self._save(epoch, history)
                self.log.record("epoch", **record)
                self.log.scalars({k: v for k, v in record.items() if k != "epoch"}, epoch, prefix="epoch/")
                if "val" in record:
                    self.log.scalars(record["val"], epoch, prefix="val/")
                self.log.info(self._summary(record))
                if stop_after_epoch is not None and epoch >= stop_after_epoch:
                    break
            return history
        finally:
            self.log.close()

    # -------------------------------------------------------------------------------------- one epoch
    def train_one_epoch(self, epoch: int) -> dict:
        """One pass over the training loader; returns epoch means (loss, step sums), lr, counts."""
        self.net.train()  # linear mode: the frozen backbone stays in eval mode (freezing.py)
        seed_epoch(self.seed, epoch, self.ctx.rank)
        if self.multi_step:
            self.step_fn.begin_epoch(epoch)
        loader = self.loader.for_epoch(epoch)
        n_iters = len(loader)
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(loader, total=n_iters, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, disable=not (self.progress and self.ctx.is_main))
        with bar:
            run_batches = self._run_batch_steps if self.multi_step else self._run_micro_batches
            totals, lr = run_batches(epoch, bar, n_iters)
        broadcast_buffers(self.model, self.ctx)  # every rank now holds the model rank 0 saves
        names = sorted(totals)
        reduced = all_reduce_sum(torch.tensor([totals[n] for n in names], dtype=torch.float64), self.ctx)
        totals = dict(zip(names, reduced.tolist()))
        if self.multi_step:
            return {"lr": lr, "iterations": n_iters, **self.step_fn.epoch_record(totals)}
        count = totals.pop("count")
        result = {"lr": lr, "iterations": n_iters, "samples": int(count)}
        result.update({f"train_{name}": value / count for name, value in totals.items()})
        return result

    def _run_micro_batches(self, epoch: int, bar: tqdm, n_iters: int) -> tuple[dict[str, float], float]:
        """``step_fn`` computes each micro-batch's loss; one optimiser step per ``accum_steps`` micro-batches."""
        accum = self.accum_steps
        totals: dict[str, float] = {"loss": 0.0, "count": 0.0}
        lr = self.schedule.lr_at(float(epoch))
        for it, batch in enumerate(bar):
            group_start = it - it % accum
            group_size = min(accum, n_iters - group_start)  # the epoch's last group may be shorter
            steps_now = it == group_start + group_size - 1
            if it == group_start:
                lr = self.schedule.lr_at(epoch + it / n_iters)
                set_lr(self.optimizer, lr)
            sync = contextlib.nullcontext() if steps_now or not self.ctx.is_distributed else self.net.no_sync()
            with sync:
                with self.runtime.autocast():
                    out = self.step_fn(self.net, batch, self.ctx.device, self.runtime.memory_format)
                loss = out.loss.detach().float()
                if any_rank(not bool(torch.isfinite(loss)), self.ctx):
                    self._fail_nonfinite(epoch, it, n_iters, loss)
                self.scaler.scale(out.loss / group_size).backward()
            if steps_now:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
            totals["loss"] += loss.item() * out.count
            totals["count"] += out.count
            for name, value in out.sums.items():
                totals[name] = totals.get(name, 0.0) + float(value)
            self._log_iteration(bar, epoch * n_iters + it, loss.item(), lr)
        return totals, lr

    def _run_batch_steps(self, epoch: int, bar: tqdm, n_iters: int) -> tuple[dict[str, float], float]:
        """A ``BatchStep`` per batch, taking its optimiser steps through ``StepContext.optimize``."""
        totals: dict[str, float] = {}
        lr = self.schedule.lr_at(float(epoch))
        for it, batch in enumerate(bar):
            lr = self.schedule.lr_at(epoch + it / n_iters)
            losses: list[float] = []  # one per optimiser step of this batch
            ctx = StepContext(epoch, it, self.ctx.device, self.runtime.memory_format, self.runtime.autocast,
                              functools.partial(any_rank, ctx=self.ctx), self._optimize_fn(epoch, it, n_iters, lr, losses))
            for name, value in self.step_fn(self.net, batch, ctx).items():
                totals[name] = totals.get(name, 0.0) + float(value)
            if losses:
                self._log_iteration(bar, epoch * n_iters + it, losses[-1], lr, steps=len(losses))
        return totals, lr

    def _optimize_fn(self, epoch: int, it: int, n_iters: int, lr: float, losses: list[float]) -> Callable[[torch.Tensor], None]:
        """``StepContext.optimize`` for one batch; appends every step's loss to ``losses``."""

        def optimize(loss: torch.Tensor) -> None:
            value = loss.detach().float()
            if any_rank(not bool(torch.isfinite(value)), self.ctx):
                self._fail_nonfinite(epoch, it, n_iters, value, inner_step=len(losses))
            set_lr(self.optimizer, lr)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            losses.append(value.item())

        return optimize

    def _log_iteration(self, bar: tqdm, step: int, loss: float, lr: float, **extra: Any) -> None:
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", **extra)
        if self.log is not None and step % self.log_every == 0:
            self.log.scalars({"loss": loss, "lr": lr}, step, prefix="train/")

    # ------------------------------------------------------------------------------------- internals
    def _fail_nonfinite(self, epoch: int, it: int, n_iters: int, loss: torch.Tensor, inner_step: int | None = None) -> None:
        where = f"epoch {epoch} (0-based), iteration {it} of {n_iters}"
        fields: dict[str, Any] = {"epoch": epoch, "iteration": it}
        if inner_step is not None:  # a BatchStep's optimiser step within the batch
            where += f", optimiser step {inner_step} (0-based) of the batch"
            fields["inner_step"] = inner_step
        kept = f"the last good checkpoint {self.checkpoint_path} was left untouched" if self.checkpoint_path.exists() else "no checkpoint was written"
        if self.log is not None:
            self.log.record("error", kind="nonfinite_loss", **fields, loss=str(loss.item()))
        raise SevereError(
            f"non-finite loss at {where} (loss on this process: {loss.item()}); training stopped and {kept}. "
            "Lower the learning rate or check the inputs."
        )

    def _check_backbone(self, epoch: int) -> bool:
        digest = backbone_digest(self.model, self.head_names)
        if digest != self.mode_record["backbone_sha256"]:
            raise SevereError(f"linear mode: the frozen backbone changed during epoch {epoch}; this is a bug (report it)")
        return True

    def _checkpoint_payload(self, epoch: int, history: list[dict]) -> dict:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "schedule": self.schedule.describe(),
            "rng": capture_rng_state(),
            "history": history,
            "setup": self.setup,
            **({"step_state": self.step_fn.state_dict()} if self.multi_step else {}),
        }

    def _save(self, epoch: int, history: list[dict]) -> None:
        if self.ctx.is_main:
            payload = self._checkpoint_payload(epoch, history)
            save_checkpoint(self.checkpoint_path, payload)
            if self.checkpoint_every and (epoch + 1) % self.checkpoint_every == 0:
                save_checkpoint(self.run_dir / f"checkpoint_e{epoch:03d}.pt", {"epoch": epoch, "model": payload["model"]})
        if self.ctx.is_distributed:
            torch.distributed.barrier()

    def _fresh_start(self) -> tuple[int, list[dict]]:
        if self.checkpoint_path.exists():
            raise SevereError(
                f"run directory {self.run_dir} already holds {LAST_CHECKPOINT}; resume it or choose a new run directory"
            )
        return 0, []

    def _resume(self) -> tuple[int, list[dict]]:
        ckpt = load_checkpoint(self.checkpoint_path)
        for key in self.resume_keys:
            if ckpt["setup"].get(key) != self.setup[key]:
                raise SevereError(
                    f"cannot resume {self.checkpoint_path}: setting '{key}' was {ckpt['setup'].get(key)!r} and is now "
                    f"{self.setup[key]!r}; resume with the original settings or start a new run directory"
                )
        if self.setup["mode"] == "linear" and ckpt["setup"]["mode_record"]["backbone_sha256"] != self.mode_record["backbone_sha256"]:
            raise SevereError(f"cannot resume {self.checkpoint_path}: the frozen backbone weights differ from the original run's")
        if ckpt["setup"].get("num_workers") != self.setup["num_workers"]:
            self._notes.append(
                f"num_workers changed from {ckpt['setup'].get('num_workers')} to {self.setup['num_workers']}: "
                "augmentation streams differ from an uninterrupted run (results stay valid, not bit-identical)"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.multi_step:
            if "step_state" not in ckpt:
                raise SevereError(f"cannot resume {self.checkpoint_path}: it was written by a run whose step did not "
                                  "take its own optimiser steps; start a new run directory")
            self.step_fn.load_state_dict(ckpt["step_state"])
        restore_rng_state(ckpt["rng"])
        return int(ckpt["epoch"]) + 1, list(ckpt["history"])

    def _backfill_log(self, history: list[dict]) -> None:
        """Append epoch records that the checkpoint holds but metrics.jsonl lacks (killed between the two)."""
        logged = {r["epoch"] for r in read_jsonl(self.log.metrics_path, "epoch")}
        for record in history:
            if record["epoch"] not in logged:
                self.log.record("epoch", **{**record, "timing": {**record.get("timing", {}), "backfilled": True}})

    def _summary(self, record: dict) -> str:
        parts = [f"epoch {record['epoch'] + 1}/{self.epochs}", f"lr {record['lr']:.3g}"]
        parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("train_") and isinstance(v, float) and math.isfinite(v)]
        if "val" in record:  # val_fn returns a dict
            parts += [f"val_{k} {v:.4f}" if isinstance(v, float) else f"val_{k} {v}" for k, v in record["val"].items()]
        return ", ".join(parts)
