"""One seed drives python ``random``, numpy, torch and every loader worker (docs/differences.md §25).

Every random stream of a training epoch is derived from (seed, epoch, rank[, worker]) only, so it never
depends on what ran before (a resumed run draws exactly what an uninterrupted one draws).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = [
    "derive_seed",
    "seed_everything",
    "seed_epoch",
    "loader_generator",
    "WorkerSeeder",
    "configure_determinism",
]

# Stream tags: keep them distinct so derived streams never coincide.
_GLOBAL, _LOADER, _WORKER = 1, 2, 3


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from non-negative integer keys (numpy SeedSequence hashing)."""
    word = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0]
    return int(word) & ((1 << 63) - 1)


def seed_everything(seed: int) -> int:
    """Seed python ``random``, numpy's global RNG and torch (CPU and CUDA) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
    return seed


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> int:
    """Re-seed the global RNGs of this process for one training epoch; returns the derived seed."""
    return seed_everything(derive_seed(seed, _GLOBAL, epoch, rank))


def loader_generator(seed: int, epoch: int, rank: int = 0, generator: torch.Generator | None = None) -> torch.Generator:
    """A torch generator for a DataLoader's sampler, seeded from (seed, epoch, rank).

    Pass an existing generator to re-seed it in place (the loader keeps its reference).
    """
    generator = generator if generator is not None else torch.Generator()
    generator.manual_seed(derive_seed(seed, _LOADER, epoch, rank))
    return generator


class WorkerSeeder:
    """``worker_init_fn`` seeding python/numpy/torch inside worker ``w`` from (seed, epoch, rank, w).

    Set ``.epoch`` before creating the epoch's loader iterator (workers are not persistent, so each
    epoch's workers receive the current value).
    """

    def __init__(self, seed: int, rank: int = 0, epoch: int = 0) -> None:
        self.seed, self.rank, self.epoch = seed, rank, epoch

    def __call__(self, worker_id: int) -> None:
        seed_everything(derive_seed(self.seed, _WORKER, self.epoch, self.rank, worker_id))


def configure_determinism(device: torch.device, deterministic: bool = True) -> dict:
    """Choose deterministic kernels; returns what was set (recorded in the run log).

    CPU: deterministic algorithms always (CPU kernels are deterministic anyway, this only warns on the
    few that are not). CUDA: ``deterministic`` picks cuDNN deterministic mode and deterministic
    algorithms (warn-only) versus cuDNN benchmark mode (faster, not bit-reproducible).
    """
    if device.type == "cuda":
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        return {"deterministic": deterministic, "cudnn_benchmark": not deterministic}
    torch.use_deterministic_algorithms(True, warn_only=True)
    return {"deterministic": True, "cudnn_benchmark": False}
