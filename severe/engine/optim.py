"""Optimisers and learning-rate schedules from explicit numbers, chosen through tables.

Two recipes are covered:
- recognition (docs/protocol.md §1.2): Adam with coupled L2 (``torch.optim.Adam(weight_decay=...)``) and a
  multi-step schedule (gamma per milestone) that changes only at epoch boundaries;
- PySlowFast (AVA/Charades/EK-100, docs/tasks.md): SGD with momentum/Nesterov, optional weight decay 0 on
  BatchNorm parameters, relative-step schedule recomputed every iteration from the fractional epoch, with
  linear warm-up;
- the ViT finetuning recipe (docs/protocol.md §15): AdamW, no weight decay on 1-D parameters, biases and
  position/class embeddings, layer-wise lr decay (each group carries an ``lr_scale`` that :func:`set_lr`
  applies) and linear warm-up followed by a cosine decay.

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
    "LayerDecay",
    "LayerRule",
    "LAYER_RULES",
    "layer_id",
    "count_blocks",
    "layer_decay_groups",
    "build_optimizer",
    "param_groups",
    "OPTIMIZERS",
    "LRSchedule",
    "ConstantLR",
    "MultiStepLR",
    "RelativeStepsLR",
    "WarmupCosineLR",
    "SCHEDULES",
    "build_schedule",
    "set_lr",
]


# ----------------------------------------------------------------------------------------- optimisers
@dataclass(frozen=True)
class OptimizerSpec:
    """Everything needed to build an optimiser except the parameters and the (scheduled) lr.

    kind: a key of ``OPTIMIZERS`` ("adam", "adamw", "sgd"). ``bn_weight_decay`` (if not None) replaces
    ``weight_decay`` for BatchNorm weights and biases (PySlowFast ``BN.WEIGHT_DECAY``). ``layer_decay`` (if not
    None) groups the parameters as the ViT recipe does (:func:`layer_decay_groups`) instead.
    """

    kind: str
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    bn_weight_decay: float | None = None
    layer_decay: LayerDecay | None = None

    def describe(self) -> dict:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        if self.layer_decay is None:  # records of runs without it stay as they were
            del out["layer_decay"]
        return out


@dataclass(frozen=True)
class LayerRule:
    """How a ViT family's parameter names map to layer ids: names starting with one of ``embed`` are layer 0,
    ``<blocks>.<i>.`` is layer i + 1, anything else (final norm, head) the last layer; ``no_decay`` names (relative
    to the backbone) get no weight decay besides every 1-D parameter and bias."""

    embed: tuple[str, ...]
    blocks: str
    no_decay: tuple[str, ...]


#: backbone family (severe.models.registry) -> its layer rule
LAYER_RULES: dict[str, LayerRule] = {
    "videomae": LayerRule(("patch_embed.", "pos_embed", "cls_token"), "blocks", ("pos_embed", "cls_token")),
    "timesformer": LayerRule(("patch_embed.", "pos_embed", "cls_token", "time_embed"), "blocks",
                             ("pos_embed", "cls_token", "time_embed")),
    "clip": LayerRule(("conv1.", "class_embedding", "positional_embedding", "temporal_positional_embedding", "ln_pre."),
                      "transformer.resblocks",
                      ("class_embedding", "positional_embedding", "temporal_positional_embedding")),
}


@dataclass(frozen=True)
class LayerDecay:
    """Layer-wise lr decay: a parameter of layer id ``i`` (of ``depth + 2``) trains at ``decay^(depth + 1 - i)``
    times the scheduled lr; ``family`` selects the :data:`LAYER_RULES` entry, ``prefix`` the backbone's
    parameter names inside the model (others, e.g. the head, are the last layer)."""

    family: str
    decay: float
    depth: int
    prefix: str = "backbone."


def layer_id(name: str, rule: LayerRule, depth: int) -> int:
    """The layer id of a backbone parameter name (see :class:`LayerRule`)."""
    if name.startswith(rule.embed):
        return 0
    head = rule.blocks + "."
    if name.startswith(head):
        return int(name[len(head):].split(".", 1)[0]) + 1
    return depth + 1


def count_blocks(model: nn.Module, family: str, prefix: str = "backbone.") -> int:
    """Number of transformer blocks of the backbone inside ``model`` (from its parameter names)."""
    if family not in LAYER_RULES:
        raise SevereError(f"layer decay: no layer rule for backbone family '{family}'; known: {sorted(LAYER_RULES)}")
    head = prefix + LAYER_RULES[family].blocks + "."
    ids = {int(n[len(head):].split(".", 1)[0]) for n, _ in model.named_parameters() if n.startswith(head)}
    return max(ids) + 1 if ids else 0


def layer_decay_groups(model: nn.Module, weight_decay: float, spec: LayerDecay) -> list[dict]:
    """Trainable parameters in groups per (layer id, decay or not), each with ``lr_scale`` and ``weight_decay``
    (0 for 1-D parameters, biases and the rule's ``no_decay`` names), ordered by layer id."""
    if spec.family not in LAYER_RULES:
        raise SevereError(f"layer decay: no layer rule for backbone family '{spec.family}'; known: {sorted(LAYER_RULES)}")
    rule = LAYER_RULES[spec.family]
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        inner = name[len(spec.prefix):] if name.startswith(spec.prefix) else None
        lid = layer_id(inner, rule, spec.depth) if inner is not None else spec.depth + 1
        skip = p.ndim <= 1 or name.endswith(".bias") or (inner is not None and inner in rule.no_decay)
        group = groups.setdefault((lid, not skip), {
            "params": [], "weight_decay": weight_decay if not skip else 0.0,
            "lr_scale": spec.decay ** (spec.depth + 1 - lid), "layer_id": lid})
        group["params"].append(p)
    if not groups:
        raise SevereError("optimizer: the model has no trainable parameter (everything is frozen)")
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], not k[1]))]


def _adam(groups: list[dict], lr: float, spec: OptimizerSpec) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)


def _adamw(groups: list[dict], lr: float, spec: OptimizerSpec) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)


def _sgd(groups: list[dict], lr: float, spec: OptimizerSpec) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=lr, momentum=spec.momentum, nesterov=spec.nesterov, weight_decay=spec.weight_decay)


OPTIMIZERS: dict[str, Callable[[list[dict], float, OptimizerSpec], torch.optim.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
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
    if spec.layer_decay is not None:
        groups = layer_decay_groups(model, spec.weight_decay, spec.layer_decay)
        for g in groups:
            g["lr"] = lr * g["lr_scale"]
    else:
        groups = param_groups(model, spec.weight_decay, spec.bn_weight_decay)
    return OPTIMIZERS[spec.kind](groups, lr, spec)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` on every parameter group, times the group's ``lr_scale`` where it has one (layer decay)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"] if "lr_scale" in group else lr


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


class WarmupCosineLR(LRSchedule):
    """Linear warm-up from ``warmup_start_lr`` to ``base_lr`` over ``warmup_epochs``, then a cosine from
    ``base_lr`` to ``min_lr`` at ``epochs`` (the ViT recipe, recomputed every iteration):
    ``min_lr + (base_lr - min_lr) (1 + cos(pi (e - w) / (epochs - w))) / 2``."""

    kind = "warmup_cosine"

    def __init__(self, base_lr: float, epochs: float, warmup_epochs: float = 0.0, min_lr: float = 0.0,
                 warmup_start_lr: float = 0.0) -> None:
        self.base_lr, self.epochs = float(base_lr), float(epochs)
        self.warmup_epochs, self.min_lr = float(warmup_epochs), float(min_lr)
        self.warmup_start_lr = float(warmup_start_lr)
        if not 0 <= self.warmup_epochs <= self.epochs or self.epochs <= 0:
            raise SevereError(f"lr schedule: warm-up epochs {self.warmup_epochs} must be in [0, epochs={self.epochs}]")

    def lr_at(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * epoch / self.warmup_epochs
        if self.epochs <= self.warmup_epochs:
            return self.min_lr
        progress = min((epoch - self.warmup_epochs) / (self.epochs - self.warmup_epochs), 1.0)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress))


SCHEDULES: dict[str, type[LRSchedule]] = {cls.kind: cls for cls in (ConstantLR, MultiStepLR, RelativeStepsLR,
                                                                     WarmupCosineLR)}


def build_schedule(kind: str, **kwargs) -> LRSchedule:
    """``build_schedule("multistep", base_lr=1e-4, milestones=[6, 10, 14], gamma=0.3)`` etc."""
    if kind not in SCHEDULES:
        raise SevereError(f"lr schedule: unknown kind '{kind}'; choose one of {sorted(SCHEDULES)}")
    try:
        return SCHEDULES[kind](**kwargs)
    except TypeError as err:
        raise SevereError(f"lr schedule '{kind}': bad arguments {sorted(kwargs)} ({err})") from None
