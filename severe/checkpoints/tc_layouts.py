"""Tubelet-Contrast's R3D-18 and I3D releases: how their names map, and synthetic files in their layout.

Both files are mmcv checkpoints like the R(2+1)D one (docs/checkpoints.md §3.8): ``meta``, ``optimizer``
and a ``state_dict`` with the query backbone under ``backbone.``, its momentum copy under
``key_encoder.``, projection heads ``fc.*`` / ``key_fc.*`` and a ``queue``. Only ``backbone.*`` is kept.

- R3D-18 (``tubelet_contrast/kinetics-400/r3d/epoch_100.pth``): the pyvrl ResNet names, renamed onto
  torchvision's ``r3d_18`` by :func:`r3d_names`. Pretrained with BatchNorm eps 1e-3.
- I3D (``tubelet_contrast/kinetics-400/i3d/epoch_100.pth``): the Inception-v1 module names, which
  ``severe.models.i3d`` shares, so the names stay as they are (:func:`i3d_names`).

Renaming functions are pure; the synthetic writers draw seeded random tensors of the target
architecture's shapes, store them under the original names, and return the exact state_dict a correct
conversion must give.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch

from severe.io import atomic_torch_save
from severe.synth.layouts import random_state

State = "OrderedDict[str, torch.Tensor]"

# ----------------------------------------------------------------------------- renaming

# pyvrl R3D module paths -> torchvision r3d_18 module paths (anchored; the parameter name is kept).
_R3D_MODULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r) for p, r in [
        (r"stem\.conv", "stem.0"),
        (r"stem\.bn", "stem.1"),
        (r"(layer[1-4]\.\d+\.conv[12])\.conv", r"\1.0"),
        (r"(layer[1-4]\.\d+)\.bn([12])", r"\1.conv\2.1"),
        (r"(layer[1-4]\.\d+)\.downsample\.conv", r"\1.downsample.0"),
        (r"(layer[1-4]\.\d+)\.downsample_bn", r"\1.downsample.1"),
    ]
]

# torchvision r3d_18 module paths -> pyvrl names (the inverse, used to write synthetic files).
_R3D_ORIGINAL: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r) for p, r in [
        (r"stem\.0", "stem.conv"),
        (r"stem\.1", "stem.bn"),
        (r"(layer[1-4]\.\d+\.conv[12])\.0", r"\1.conv"),
        (r"(layer[1-4]\.\d+)\.conv([12])\.1", r"\1.bn\2"),
        (r"(layer[1-4]\.\d+)\.downsample\.0", r"\1.downsample.conv"),
        (r"(layer[1-4]\.\d+)\.downsample\.1", r"\1.downsample_bn"),
    ]
]


def _rename_module(name: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    module, _, param = name.rpartition(".")
    for pattern, repl in table:
        if pattern.fullmatch(module):
            return f"{pattern.sub(repl, module)}.{param}"
    return name


def r3d_names(name: str) -> str:
    """Tubelet-Contrast R3D-18 name (``stem.conv``, ``layerL.B.conv1.conv``, ``bn1``, ``downsample_bn``)
    -> torchvision ``r3d_18`` name; anything else is returned unchanged (strict verification catches it)."""
    return _rename_module(name, _R3D_MODULES)


def i3d_names(name: str) -> str:
    """Tubelet-Contrast I3D names are already ``severe.models.i3d`` names."""
    return name


def original_r3d_name(name: str) -> str:
    """torchvision ``r3d_18`` name -> the Tubelet-Contrast (pyvrl) name; the inverse of :func:`r3d_names`."""
    renamed = _rename_module(name, _R3D_ORIGINAL)
    if renamed == name:
        raise ValueError(f"not an r3d_18 backbone key: {name}")
    return renamed


# ----------------------------------------------------------------------------- synthetic files

_META = {"epoch": 100, "iter": 250000, "mmcv_version": "1.3.0", "time": "Sat Jan  1 00:00:00 2022"}
_OPTIMIZER = {"state": {}, "param_groups": [{"lr": 0.0, "momentum": 0.9, "weight_decay": 1e-4, "params": [0, 1, 2]}]}
_QUEUE = 16384  # queue_size of the original MoCo configs


def _shapes(arch: str) -> dict[str, tuple[int, ...]]:
    if arch == "i3d":
        from severe.models.i3d import I3D

        with torch.device("meta"):
            return {k: tuple(v.shape) for k, v in I3D().state_dict().items()}
    from severe.models.backbones import backbone_key_shapes

    return backbone_key_shapes(arch)


# Projection heads of the original MoCo configs (names under fc. / key_fc.).
R3D_HEAD = {"0.weight": (512, 512), "0.bias": (512,), "2.weight": (128, 512), "2.bias": (128,)}
I3D_HEAD = {"2.weight": (1024, 1024), "2.bias": (1024,), "4.weight": (128, 1024), "4.bias": (128,)}


def tc_object(backbone: State, key_copy: State, rename: Callable[[str], str], head: dict[str, tuple[int, ...]],
              seed: int, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """The mmcv checkpoint object holding ``backbone`` (query) and ``key_copy`` (momentum encoder) under the
    original names ``rename(key)``, seeded heads of shapes ``head`` and the queue."""
    fc = random_state(head, seed + 10, dtype)
    sd: dict[str, torch.Tensor] = {}
    sd.update({"backbone." + rename(k): v for k, v in backbone.items()})
    sd.update({"key_encoder." + rename(k): v for k, v in key_copy.items()})
    sd.update({"fc." + k: v for k, v in fc.items()})
    sd.update({"key_fc." + k: v.clone() for k, v in fc.items()})
    g = torch.Generator().manual_seed(seed + 11)
    sd["queue"] = torch.nn.functional.normalize(torch.randn(128, _QUEUE, generator=g), dim=0)
    sd["queue_ptr"] = torch.zeros(1, dtype=torch.long)
    return {"meta": dict(_META), "state_dict": sd, "optimizer": _OPTIMIZER}


def _checkpoint(arch: str, rename: Callable[[str], str], head: dict[str, tuple[int, ...]], seed: int,
                dtype: torch.dtype) -> tuple[Any, State]:
    shapes = _shapes(arch)
    backbone = random_state(shapes, seed, dtype)
    key_copy = random_state(shapes, seed + 1000, dtype)  # momentum encoder: different values
    return tc_object(backbone, key_copy, rename, head, seed, dtype), backbone


def tc_r3d_checkpoint(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Any, State]:
    """(Tubelet-Contrast R3D-18 checkpoint object, the r3d_18 state_dict it must convert to).
    Heads as the original's ResNet MoCo head: ``fc.0`` 512->512, ``fc.2`` 512->128."""
    return _checkpoint("r3d_18", original_r3d_name, R3D_HEAD, seed, dtype)


def tc_i3d_checkpoint(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Any, State]:
    """(Tubelet-Contrast I3D checkpoint object, the i3d state_dict it must convert to).
    Heads as the original's I3D head (pool, flatten, ``fc.2`` 1024->1024, ReLU, ``fc.4`` 1024->128)."""
    return _checkpoint("i3d", i3d_names, I3D_HEAD, seed, dtype)


def write_tc_r3d(path: str | Path, seed: int = 0, dtype: torch.dtype = torch.float32) -> State:
    """Save a synthetic Tubelet-Contrast R3D-18 file at ``path``; returns the expected r3d_18 state_dict."""
    obj, expected = tc_r3d_checkpoint(seed, dtype)
    atomic_torch_save(obj, path)
    return expected


def write_tc_i3d(path: str | Path, seed: int = 0, dtype: torch.dtype = torch.float32) -> State:
    """Save a synthetic Tubelet-Contrast I3D file at ``path``; returns the expected i3d state_dict."""
    obj, expected = tc_i3d_checkpoint(seed, dtype)
    atomic_torch_save(obj, path)
    return expected
