"""Synthetic checkpoints are determined by their seed: every tensor, junk parts (queues, memory banks) included."""

from __future__ import annotations

import pytest
import torch

from severe.checkpoints.methods import METHODS
from severe.synth.checkpoints import write_synthetic_checkpoint


def _tensors(obj, where: str = "") -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return {where: obj}
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{where}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{where}/{i}"))
    return out


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_tensors(method, tmp_path):
    for name in ("a", "b"):
        write_synthetic_checkpoint(method, tmp_path / f"{name}.pth", seed=3)
    a, b = (_tensors(torch.load(tmp_path / f"{n}.pth", map_location="cpu", weights_only=False)) for n in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "same seed gave different tensors"


def test_another_seed_changes_every_float_tensor(tmp_path):
    for name, seed in (("a", 3), ("c", 4)):
        write_synthetic_checkpoint("moco", tmp_path / f"{name}.pth", seed=seed)  # moco holds a queue
    a, c = (_tensors(torch.load(tmp_path / f"{n}.pth", map_location="cpu", weights_only=False)) for n in "ac")
    floats = [k for k, v in a.items() if v.is_floating_point() and v.numel() > 1]
    assert any("queue" in k for k in floats) and all(not torch.equal(a[k], c[k]) for k in floats)
