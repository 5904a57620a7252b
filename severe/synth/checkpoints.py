"""Synthetic checkpoints in each method's real on-disk layout (docs/checkpoints.md §3), from seeded random
weights: containers, prefixes, momentum encoders with *different* values, heads, audio branches,
queues and pickled objects, so a converter that picks the wrong block or drops a key is caught.

``synthetic_checkpoint(method, seed)`` returns (object to save, the exact backbone state_dict a correct
conversion must produce); the layout itself is the function its row of the method table names
(``MethodSpec.synthetic``, see :mod:`severe.synth.layouts`). Negative variants reproduce releases that
must be refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from severe.checkpoints.methods import METHODS
from severe.errors import SevereError
from severe.models.backbones import backbone_key_shapes
from severe.synth.layouts import State, Weights, random_state, to_ctp_name, to_numbered_name

__all__ = ["VARIANTS", "backbone_state", "random_state", "synthetic_checkpoint", "to_ctp_name", "to_numbered_name",
           "write_synthetic_checkpoint"]


def backbone_state(arch: str, seed: int, dtype: torch.dtype = torch.float32) -> State:
    return random_state(backbone_key_shapes(arch), seed, dtype)


VARIANTS = {
    None: "the method's published layout",
    "no_module": "single-GPU save without 'module.' (moco, selavi, avid_cma, pretext_contrast, tclr)",
    "no_num_batches": "old torchvision file without num_batches_tracked (supervised)",
    "upstream": "upstream CtP mid channels 288/576/1152 (ctp, tubelet_contrast): must be refused",
    "fair": "FAIR's AVID-CMA release names (avid_cma): must be refused",
    "vcop": "released RSPNet VCOP R(2+1)D names (rspnet): must be refused",
    "finetuned": "DeepSpeed finetuned save under 'module' with head and fc_norm (videomae)",
    "hf": "Hugging Face transformers names (videomae, supervised_vit, svt)",
    "momentum": "encoder under encoder_q.encoder.model. (mme)",
    "video_text": "the video-text (multi-modality) file (umt)",
    "student_only": "SVT file without its teacher (svt): must be refused",
    "bare_teacher": "the SVT teacher state dict alone (svt)",
}


def synthetic_checkpoint(method: str, seed: int = 0, variant: str | None = None,
                         dtype: torch.dtype = torch.float32) -> tuple[Any, State]:
    """(checkpoint object in ``method``'s on-disk layout, the backbone state_dict it must convert to)."""
    if method not in METHODS:
        raise SevereError(f"unknown method '{method}'; known: {', '.join(METHODS)}")
    if variant not in VARIANTS:
        raise SevereError(f"unknown synthetic variant '{variant}'; known: {', '.join(str(v) for v in VARIANTS)}")
    spec = METHODS[method]
    arch = getattr(spec, "synthetic_arch", spec.arch)  # ViT rows write their tiny twin (small files)
    backbone = backbone_state(arch, seed, dtype)
    other = backbone_state(arch, seed + 1000, dtype)  # momentum encoder / key copy: different values
    return spec.synthetic(Weights(backbone, other, seed, variant))


def write_synthetic_checkpoint(method: str, path: str | Path, seed: int = 0, variant: str | None = None,
                               dtype: torch.dtype = torch.float32) -> State:
    """Save a synthetic checkpoint of ``method`` at ``path``; returns the expected converted state_dict."""
    obj, expected = synthetic_checkpoint(method, seed, variant, dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return expected
