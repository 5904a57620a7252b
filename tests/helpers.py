"""Helpers shared by the tests (imported as ``tests.helpers``): repository paths, tiny run settings, toy
models and datasets, fake backbones, and the tiny clip shape of a registered architecture."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from severe.models import get_backbone_spec
from severe.models.backbones import VideoBackbone

REPO = Path(__file__).resolve().parents[1]
SLOWFAST_CONFIGS = REPO / "SlowFast-ssl-vssl" / "configs"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a Python process a test starts: this one's (one OpenMP thread, see conftest) with
    the repository first on PYTHONPATH, so the process can import ``tests.helpers``."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


# ------------------------------------------------------------------------------- tiny clip shapes

def torchrun_two_processes(script: Path, timeout: int) -> None:
    """Run ``script`` under ``torch.distributed.run`` with 2 local processes (a free port, the suite's thread
    settings); fails the test with the end of its output when it does not exit cleanly."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
           str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=subprocess_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def tiny_clip_size(arch: str, frames: int = 8, crop: int = 32) -> tuple[int, int]:
    """The smallest frames >= ``frames`` and crop >= ``crop`` that the architecture's strides divide."""
    spec = get_backbone_spec(arch)
    return (spec.temporal_stride * math.ceil(frames / spec.temporal_stride),
            spec.spatial_stride * math.ceil(crop / spec.spatial_stride))


# ------------------------------------------------------------------------------- fake backbones

class DummyBackbone(nn.Module):
    """A patchify conv + BN: ``feature_dim`` 24 and strides 2 (time) / 4 (space), nothing like R(2+1)D-18."""

    def __init__(self, dim: int = 24, temporal_stride: int = 2, spatial_stride: int = 4) -> None:
        super().__init__()
        kernel = (temporal_stride, spatial_stride, spatial_stride)
        self.proj = nn.Conv3d(3, dim, kernel_size=kernel, stride=kernel)
        self.norm = nn.BatchNorm3d(dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.proj(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean(dim=(2, 3, 4))


def tiny_repetition_backbone(arch: str = "r2plus1d_18") -> VideoBackbone:
    """A one-conv stand-in with R(2+1)D-18's 512-d output, for repetition-counting runs in seconds."""
    stem = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1, bias=False), nn.BatchNorm3d(4), nn.ReLU())
    return VideoBackbone(arch, stem, [nn.Identity(), nn.Identity(), nn.Identity(), nn.Conv3d(4, 512, 1)])


def tiny_repetition_make_backbone(arch: str, weights=None) -> VideoBackbone:
    """Drop-in for ``severe.tasks.lifecycle.make_backbone`` (scratch runs only)."""
    assert weights is None
    return tiny_repetition_backbone(arch)


# ------------------------------------------------------------------------------- tiny run settings

# recognition: 4 frames of 32x32 (the smallest R(2+1)D-18 input), 2 test clips, no workers
RECOGNITION_TINY = ["TRAIN.EPOCHS", "2", "TRAIN.BATCH_SIZE", "4", "DATA.NUM_FRAMES", "4", "DATA.CROP", "32",
                    "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1",
                    "DATA.TEST_CLIPS", "2", "TEST.BATCH_SIZE", "3", "TRAIN.MILESTONES", "[1]"]

# repetition counting: 16-pixel crops, 4 frames per stream, at most 3 inner steps
REPETITION_TINY = ["TRAIN.EPOCHS", "2", "TRAIN.BATCH_SIZE", "3", "DATA.CROP", "16", "MODEL.FRAMES_PER_STREAM", "4",
                   "DATA.ITEMS_PER_VIDEO", "1", "TRAIN.MAX_INNER_STEPS", "3", "DATA.NUM_WORKERS", "0",
                   "TEST.BATCH_SIZE", "4", "DATA.MAX_SEGMENT_FRAMES", "30", "TRAIN.CHECKPOINT_EVERY", "1"]


# ------------------------------------------------------------------------------- learning checks

def sgd_losses(model: nn.Module, step: Callable[[nn.Module], torch.Tensor], steps: int = 4, lr: float = 0.05) -> list[float]:
    """The loss of each of ``steps`` SGD steps (Nesterov momentum 0.9) on one fixed batch; ``step(model)``
    returns the batch's loss. A task's training step learns when ``losses[-1] < 0.8 * losses[0]``."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(steps):
        loss = step(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# ------------------------------------------------------------------------------- engine toys

NUM_CLASSES = 4
OFFSETS = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, -1.0, -1.0]])


class TinyNet(nn.Module):
    """3D conv -> BN -> pool -> dropout backbone and a linear head (the layout of VideoClassifier)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv3d(3, 6, 3, padding=1), nn.BatchNorm3d(6), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(0.2)
        )
        self.head = nn.Linear(6, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


class ToyTrain(torch.utils.data.Dataset):
    """(clip [3,4,8,8], label, index): class = a colour offset; noise drawn from torch, numpy and python
    global RNGs (so every stream must be seeded for exact resume)."""

    def __init__(self, n: int = 48) -> None:
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        y = i % NUM_CLASSES
        x = torch.randn(3, 4, 8, 8) + OFFSETS[y].view(3, 1, 1, 1) * (0.5 + random.random())
        return x + float(np.random.rand()) * 0.1, y, i


class ToyTest(torch.utils.data.Dataset):
    """(clips [K,3,4,8,8], label, index): deterministic per index."""

    def __init__(self, n: int = 24, k: int = 3) -> None:
        self.n, self.k = n, k

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        y = (i * 7) % NUM_CLASSES
        g = torch.Generator().manual_seed(1000 + i)
        return torch.randn(self.k, 3, 4, 8, 8, generator=g) + 0.7 * OFFSETS[y].view(1, 3, 1, 1, 1), y, i
