"""torchrun / DDP plumbing (docs/differences.md §20, §21).

- ``init_distributed`` reads the torchrun environment (env:// rendezvous), NCCL on GPU, gloo on CPU;
  a plain ``python`` launch gives a single-process context.
- ``per_process_batch`` splits the global batch *before* any loader is built.
- Evaluation shards the test set into contiguous index ranges (no padding, no duplicates) and
  ``gather_by_index`` collects per-item arrays from every rank, ordered by item index, so metrics equal
  a single-process run exactly.
- ``unwrap_model`` strips DDP / torch.compile wrappers: checkpoints always hold the bare state dict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from severe.errors import SevereError

__all__ = [
    "DistContext",
    "init_distributed",
    "cleanup_distributed",
    "per_process_batch",
    "wrap_model",
    "unwrap_model",
    "shard_range",
    "gather_by_index",
    "all_reduce_sum",
    "any_rank",
    "broadcast_buffers",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size, local rank, its device and the backend (None = single)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise SevereError(f"distributed: environment variable {name}={value!r} is not an integer") from None


def init_distributed(device: str | None = None) -> DistContext:
    """Context for this process; joins the process group when launched by torchrun (WORLD_SIZE > 1).

    device: "cpu", "cuda" or None (CUDA if available). Under torchrun each process uses cuda:LOCAL_RANK.
    """
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind not in ("cpu", "cuda"):
        raise SevereError(f"distributed: device must be 'cpu' or 'cuda', got {kind!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SevereError("distributed: device 'cuda' requested but CUDA is not available; use device 'cpu'")
    world, rank, local = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = torch.device("cuda", local) if kind == "cuda" else torch.device("cpu")
    if world == 1:
        return DistContext(device=dev)
    backend = "nccl" if kind == "cuda" else "gloo"
    if kind == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise SevereError(f"distributed: process group ({dist.get_rank()}/{dist.get_world_size()}) disagrees with RANK/WORLD_SIZE ({rank}/{world})")
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend)


def cleanup_distributed() -> None:
    """Leave the process group (no-op when single-process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def per_process_batch(global_batch: int, world_size: int, accum_steps: int = 1) -> int:
    """Per-process micro-batch: global batch / (world size · accumulation steps), which must divide."""
    if global_batch < 1 or world_size < 1 or accum_steps < 1:
        raise SevereError(f"batch: global batch {global_batch}, world size {world_size} and accumulation steps {accum_steps} must be ≥ 1")
    parts = world_size * accum_steps
    if global_batch % parts:
        raise SevereError(
            f"batch: global batch {global_batch} is not divisible by world size {world_size} × "
            f"accumulation steps {accum_steps}; change the batch size, the number of processes or accum_steps"
        )
    return global_batch // parts


def wrap_model(model: nn.Module, ctx: DistContext, find_unused_parameters: bool = False) -> nn.Module:
    """DDP wrapper when distributed, the model itself otherwise."""
    if not ctx.is_distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module under DDP and torch.compile wrappers (its state_dict has no ``module.`` prefix)."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def shard_range(n: int, rank: int, world_size: int, block: int = 1) -> range:
    """Contiguous shard of ``range(n)`` for ``rank``: every index exactly once over all ranks, no padding.

    Shard boundaries fall on multiples of ``block`` (the evaluation batch size), so each rank forms exactly
    the batches a single process would: per-item outputs are then bit-identical to a single-process run
    even where kernels depend on batch composition. A rank may get an empty shard.
    """
    blocks = -(-n // block)
    first, last = rank * blocks // world_size, (rank + 1) * blocks // world_size
    return range(min(first * block, n), min(last * block, n))


def gather_by_index(
    arrays: dict[str, np.ndarray], indices: np.ndarray, ctx: DistContext, expected: int | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Collect per-item arrays from every rank, de-duplicate by item index and order by it.

    arrays: name -> array whose first axis matches ``indices`` (a rank with no items passes {} and an
    empty ``indices``). Every rank receives the full result.
    ``expected``: the indices must be exactly 0..expected-1 (e.g. len(dataset)); anything else is an error.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if ctx.is_distributed:
        parts: list = [None] * ctx.world_size
        dist.all_gather_object(parts, (indices, arrays))
        parts = [p for p in parts if len(p[0])]  # ranks with an empty shard contribute nothing
        indices = np.concatenate([p[0] for p in parts]) if parts else indices
        arrays = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]} if parts else arrays
    unique, first = np.unique(indices, return_index=True)
    if expected is not None and (len(unique) != expected or (expected and (unique[0] != 0 or unique[-1] != expected - 1))):
        raise SevereError(
            f"evaluation: gathered {len(unique)} distinct item indices (range {unique[:1]}..{unique[-1:]}) but the "
            f"dataset has {expected} items; the dataset must return its own position 0..{expected - 1} as the item index"
        )
    return {k: v[first] for k, v in arrays.items()}, unique


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a float64 tensor over all ranks (identity when single-process)."""
    if not ctx.is_distributed:
        return values
    out = values.to(ctx.device, torch.float64)
    dist.all_reduce(out)
    return out.cpu()


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank if it is True on any rank."""
    if not ctx.is_distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def broadcast_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP keeps parameters equal on all ranks but each rank updates its own BN statistics after the
    broadcast at the start of the forward pass; without this, ranks would evaluate different models.
    """
    if ctx.is_distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)
