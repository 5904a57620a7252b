"""Training modes: ``finetune`` (everything trains) and ``linear`` (frozen backbone, docs/protocol.md §8.2).

Linear mode freezes every parameter outside the head modules (requires_grad False) and pins every
backbone module in eval mode: their ``train()`` is replaced by one that always sets eval, so BatchNorm
running statistics never change even when the trainer (or anyone) calls ``model.train()``.
"""

from __future__ import annotations

import hashlib
import types
from typing import Callable, Sequence

from torch import nn

from severe.errors import SevereError

__all__ = ["MODES", "prepare_mode", "freeze_backbone", "freeze_bn_statistics", "backbone_digest"]


def _heads(model: nn.Module, head_names: Sequence[str]) -> tuple[str, ...]:
    names = dict(model.named_modules())
    heads = tuple(head_names)
    if not heads:
        raise SevereError("linear mode: no head module named; pass head_names, e.g. ('head',)")
    for h in heads:
        if not h or h not in names:
            top = [n for n in model._modules]
            raise SevereError(f"linear mode: head module '{h}' not found in the model (top-level modules: {top})")
    return heads


def _in_head(name: str, heads: tuple[str, ...]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in heads)


def _holds_head(name: str, heads: tuple[str, ...]) -> bool:
    return name == "" or any(h.startswith(name + ".") for h in heads)


def _always_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def freeze_backbone(model: nn.Module, head_names: Sequence[str]) -> list[str]:
    """Freeze everything outside ``head_names`` (module names, e.g. ('head',)); returns frozen parameter names.

    Frozen modules stay in eval mode for good (dropout off, BatchNorm uses and keeps its running stats).
    """
    heads = _heads(model, head_names)
    frozen = []
    for name, param in model.named_parameters():
        if not _in_head(name, heads):
            param.requires_grad_(False)
            frozen.append(name)
    for name, module in model.named_modules():
        if not _in_head(name, heads) and not _holds_head(name, heads):
            module.train = types.MethodType(_always_eval, module)
            module.training = False
    return frozen


def freeze_bn_statistics(model: nn.Module) -> int:
    """Pin every BatchNorm module in eval mode (PySlowFast ``BN.FREEZE``): training uses and keeps the running
    statistics while the affine parameters still train. Returns how many modules were pinned."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.train = types.MethodType(_always_eval, bn)
        bn.training = False
    return len(bns)


def backbone_digest(model: nn.Module, head_names: Sequence[str]) -> str:
    """sha256 over every state-dict tensor (parameters and buffers) outside the heads, in name order."""
    heads = _heads(model, head_names)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if not _in_head(name, heads):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _finetune(model: nn.Module, head_names: Sequence[str]) -> dict:
    return {"mode": "finetune", "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def _linear(model: nn.Module, head_names: Sequence[str]) -> dict:
    frozen = freeze_backbone(model, head_names)
    return {
        "mode": "linear",
        "head_names": list(head_names),
        "frozen_tensors": len(frozen),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "backbone_sha256": backbone_digest(model, head_names),
    }


MODES: dict[str, Callable[[nn.Module, Sequence[str]], dict]] = {"finetune": _finetune, "linear": _linear}


def prepare_mode(model: nn.Module, mode: str, head_names: Sequence[str] = ()) -> dict:
    """Apply a training mode to the model; returns a record of what was done."""
    if mode not in MODES:
        raise SevereError(f"training mode '{mode}' is unknown; choose one of {sorted(MODES)}")
    return MODES[mode](model, head_names)
