"""The training loop shared by every task (torchvision-references style: read it top to bottom).

One ``Trainer`` owns one run directory:
  checkpoint_last.pt   model (bare state dict), optimiser, scaler, schedule, epoch, RNG states, history
  checkpoint_eNNN.pt   optional periodic copies (``checkpoint_every``)
  metrics.jsonl        append-only JSON lines: start/resume/epoch/error events
  train.log            append-only console log
  tensorboard/         optional

Semantics (protocol.md §1.2-1.3, §5, pitfalls.md D):
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
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

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

__all__ = ["StepOutput", "classification_step", "Trainer", "LAST_CHECKPOINT"]

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
    step_fn computes the loss of one micro-batch (default: ``classification_step``).
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
        step_fn: TrainStep = classification_step,
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
        self.ctx = dist or DistContext()
        self.run_dir = Path(run_dir)
        self.epochs, self.seed, self.accum_steps = epochs, seed, accum_steps
        self.schedule, self.step_fn, self.val_fn = schedule, step_fn, val_fn
        self.checkpoint_every, self.log_every, self.progress = checkpoint_every, log_every, progress
        self.head_names = tuple(head_names)
        # 1. per-process batch: decided before any loader exists
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
        self.loader = EpochLoader(
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
        loader = self.loader.for_epoch(epoch)
        n_iters, accum = len(loader), self.accum_steps
        totals: dict[str, float] = {"loss": 0.0, "count": 0.0}
        lr = self.schedule.lr_at(float(epoch))
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(loader, total=n_iters, desc=f"epoch {epoch + 1}/{self.epochs}", leave=False, disable=not (self.progress and self.ctx.is_main))
        with bar:
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
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.3g}")
                step = epoch * n_iters + it
                if self.log is not None and step % self.log_every == 0:
                    self.log.scalars({"loss": loss.item(), "lr": lr}, step, prefix="train/")
        broadcast_buffers(self.model, self.ctx)  # every rank now holds the model rank 0 saves
        names = sorted(totals)
        reduced = all_reduce_sum(torch.tensor([totals[n] for n in names], dtype=torch.float64), self.ctx)
        totals = dict(zip(names, reduced.tolist()))
        count = totals.pop("count")
        result = {"lr": lr, "iterations": n_iters, "samples": int(count)}
        result.update({f"train_{name}": value / count for name, value in totals.items()})
        return result

    # ------------------------------------------------------------------------------------- internals
    def _fail_nonfinite(self, epoch: int, it: int, n_iters: int, loss: torch.Tensor) -> None:
        where = f"epoch {epoch} (0-based), iteration {it} of {n_iters}"
        kept = f"the last good checkpoint {self.checkpoint_path} was left untouched" if self.checkpoint_path.exists() else "no checkpoint was written"
        if self.log is not None:
            self.log.record("error", kind="nonfinite_loss", epoch=epoch, iteration=it, loss=str(loss.item()))
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
        }

    def _save(self, epoch: int, history: list[dict]) -> None:
        if self.ctx.is_main:
            payload = self._checkpoint_payload(epoch, history)
            save_checkpoint(self.checkpoint_path, payload)
            if self.checkpoint_every and (epoch + 1) % self.checkpoint_every == 0:
                save_checkpoint(self.run_dir / f"checkpoint_e{epoch:03d}.pt", payload)
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
        for key in _RESUME_KEYS:
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
