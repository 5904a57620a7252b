"""Optimisers and learning-rate schedules from explicit numbers, chosen through tables.

Two recipes are covered:
- recognition (docs/protocol.md §1.2): Adam with coupled L2 (``torch.optim.Adam(weight_decay=...)``) and a
  multi-step schedule (gamma per milestone) that changes only at epoch boundaries;
- PySlowFast (AVA/Charades/EK-100, docs/tasks.md): SGD with momentum/Nesterov, optional weight decay 0 on
  BatchNorm parameters, relative-step schedule recomputed every iteration from the fractional epoch, with
  linear warm-up.

Every schedule is a pure function ``lr_at(epoch_float)`` of the (fractional) epoch, so the learning rate
never depends on hidden scheduler state and a resumed run sets exactly the same values.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from severe.errors import SevereError

__all__ = [
    "OptimizerSpec",
    "build_optimizer",
    "param_groups",
    "OPTIMIZERS",
    "LRSchedule",
    "ConstantLR",
    "MultiStepLR",
    "RelativeStepsLR",
    "SCHEDULES",
    "build_schedule",
    "set_lr",
]


# ----------------------------------------------------------------------------------------- optimisers
@dataclass(frozen=True)
class OptimizerSpec:
    """Everything needed to build an optimiser except the parameters and the (scheduled) lr.

    kind: a key of ``OPTIMIZERS`` ("adam", "sgd"). ``bn_weight_decay`` (if not None) replaces
    ``weight_decay`` for BatchNorm weights and biases (PySlowFast ``BN.WEIGHT_DECAY``).
    """

    kind: str
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    bn_weight_decay: float | None = None

    def describe(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _adam(groups: list[dict], lr: float, spec: OptimizerSpec) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)


def _sgd(groups: list[dict], lr: float, spec: OptimizerSpec) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=spec.momentum, nesterov=spec.nesterov, weight_decay=spec.weight_decay)


OPTIMIZERS: dict[str, Callable[[list[dict], float, OptimizerSpec], torch.optim.Optimizer]] = {
    "adam": _adam,
    "sgd": _sgd,
}


def param_groups(model: nn.Module, weight_decay: float, bn_weight_decay: float | None) -> list[dict]:
    """Trainable parameters (requires_grad) as optimiser groups; BN parameters separate if requested."""
    bn_ids = {
        id(p)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for p in m.parameters(recurse=False)
    }
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise SevereError("optimizer: the model has no trainable parameter (everything is frozen)")
    if bn_weight_decay is None:
        return [{"params": trainable}]
    groups = [
        {"params": [p for p in trainable if id(p) not in bn_ids], "weight_decay": weight_decay},
        {"params": [p for p in trainable if id(p) in bn_ids], "weight_decay": bn_weight_decay},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, spec: OptimizerSpec, lr: float) -> torch.optim.Optimizer:
    """Optimiser of kind ``spec.kind`` over the model's trainable parameters, initial lr ``lr``."""
    if spec.kind not in OPTIMIZERS:
        raise SevereError(f"optimizer: unknown kind '{spec.kind}'; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[spec.kind](param_groups(model, spec.weight_decay, spec.bn_weight_decay), lr, spec)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the same lr on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


# ------------------------------------------------------------------------------------------ schedules
class LRSchedule:
    """An lr as a pure function of the fractional epoch (epoch + iteration / iterations_per_epoch)."""

    kind: str = ""

    def lr_at(self, epoch: float) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": self.kind, **vars(self)}


class ConstantLR(LRSchedule):
    """A constant lr (UCF-RC)."""

    kind = "constant"

    def __init__(self, base_lr: float) -> None:
        self.base_lr = float(base_lr)

    def lr_at(self, epoch: float) -> float:
        return self.base_lr


class MultiStepLR(LRSchedule):
    """base_lr · gamma^(number of milestones ≤ the integer epoch): torch's MultiStepLR stepped once after
    each epoch (the recognition recipe). Changes only at epoch boundaries."""

    kind = "multistep"

    def __init__(self, base_lr: float, milestones: Iterable[int], gamma: float) -> None:
        self.base_lr = float(base_lr)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)

    def lr_at(self, epoch: float) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, math.floor(epoch))


class RelativeStepsLR(LRSchedule):
    """PySlowFast ``steps_with_relative_lrs`` plus linear warm-up (``get_lr_at_epoch``).

    ``steps`` are the epochs where each relative factor starts (the first must be 0), ``factors`` the
    multipliers of ``base_lr``. During warm-up (epoch < warmup_epochs) the lr rises linearly from
    ``warmup_start_lr`` to the scheduled lr at ``warmup_epochs``. Recomputed every iteration.
    """

    kind = "relative_steps"

    def __init__(
        self,
        base_lr: float,
        steps: Iterable[float],
        factors: Iterable[float],
        warmup_epochs: float = 0.0,
        warmup_start_lr: float = 0.0,
    ) -> None:
        self.base_lr = float(base_lr)
        self.steps = [float(s) for s in steps]
        self.factors = [float(f) for f in factors]
        self.warmup_epochs = float(warmup_epochs)
        self.warmup_start_lr = float(warmup_start_lr)
        if len(self.steps) != len(self.factors) or not self.steps or self.steps[0] != 0:
            raise SevereError(
                f"lr schedule: steps {self.steps} and factors {self.factors} must have equal length and start at epoch 0"
            )
        if self.steps != sorted(self.steps):
            raise SevereError(f"lr schedule: steps must be increasing, got {self.steps}")

    def _stepped(self, epoch: float) -> float:
        return self.base_lr * self.factors[bisect.bisect_right(self.steps, epoch) - 1]

    def lr_at(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            end = self._stepped(self.warmup_epochs)
            return self.warmup_start_lr + epoch * (end - self.warmup_start_lr) / self.warmup_epochs
        return self._stepped(epoch)


SCHEDULES: dict[str, type[LRSchedule]] = {cls.kind: cls for cls in (ConstantLR, MultiStepLR, RelativeStepsLR)}


def build_schedule(kind: str, **kwargs) -> LRSchedule:
    """``build_schedule("multistep", base_lr=1e-4, milestones=[6, 10, 14], gamma=0.3)`` etc."""
    if kind not in SCHEDULES:
        raise SevereError(f"lr schedule: unknown kind '{kind}'; choose one of {sorted(SCHEDULES)}")
    try:
        return SCHEDULES[kind](**kwargs)
    except TypeError as err:
        raise SevereError(f"lr schedule '{kind}': bad arguments {sorted(kwargs)} ({err})") from None
