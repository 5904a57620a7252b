"""Training checkpoints: atomic writes, weights-only loading, RNG states as plain types (docs/differences.md §17, §21, §24).

A checkpoint is a dict of tensors and plain python values only, so ``torch.load(weights_only=True)``
reads it. The model entry is always the unwrapped state dict (no ``module.`` prefix).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from severe.errors import SevereError
from severe.io import atomic_torch_save

__all__ = [
    "CHECKPOINT_FORMAT",
    "capture_rng_state",
    "restore_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_weights",
]

CHECKPOINT_FORMAT = "severe-train-checkpoint/1"


def capture_rng_state() -> dict:
    """python/numpy/torch(/CUDA) RNG states as tensors and plain types (weights-only loadable)."""
    version, words, gauss = random.getstate()
    key, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": key,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    """Inverse of ``capture_rng_state``."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["key"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write a checkpoint dict (temp file + rename: a crash never leaves a partial file)."""
    return atomic_torch_save({"format": CHECKPOINT_FORMAT, **payload}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise SevereError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file or pickled objects refused by weights-only loading
        from severe.checkpoints.loading import first_line, refused_object

        if "Weights only load failed" in str(err):  # torch's own text is long and cut mid-sentence in one line
            raise SevereError(f"checkpoint {path} contains {refused_object(err)}, which weights-only loading "
                              f"refuses: a severe training checkpoint holds tensors and plain values only (this "
                              f"file was written by another tool)") from None
        raise SevereError(f"checkpoint {path} cannot be read (truncated or not a checkpoint: {first_line(err)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SevereError(f"checkpoint {path} is not a severe training checkpoint (format {CHECKPOINT_FORMAT} expected)")
    return ckpt


def load_model_weights(model: nn.Module, source: str | os.PathLike | dict, key: str = "model") -> None:
    """Strictly load weights into the bare model from a checkpoint file/dict (its ``key`` entry)."""
    ckpt = load_checkpoint(source) if not isinstance(source, dict) else source
    state = ckpt[key] if key in ckpt else None
    if state is None:
        raise SevereError(f"checkpoint {source if not isinstance(source, dict) else '<dict>'} has no '{key}' entry")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise SevereError(f"checkpoint weights do not fit the model: {str(err).splitlines()[-1].strip()}") from None
    if result.missing_keys or result.unexpected_keys:
        raise SevereError(
            f"checkpoint weights do not match the model: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]} (check the architecture and number of classes)"
        )
