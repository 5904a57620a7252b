"""Data loaders whose randomness is derived from (seed, epoch, rank, worker) only (docs/differences.md §20, §25)."""

from __future__ import annotations

from typing import Callable

from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Subset

from severe.engine.distributed import DistContext, shard_range
from severe.engine.seeding import WorkerSeeder, loader_generator
from severe.errors import SevereError

__all__ = ["EpochLoader", "build_eval_loader"]


class EpochLoader:
    """Training loader: shuffled (DistributedSampler under DDP), last incomplete batch dropped.

    Call ``for_epoch(e)`` before iterating epoch ``e``: it re-seeds the sampler generator, the worker
    seeds and the DistributedSampler epoch, so the epoch's order and augmentation streams depend only on
    (seed, epoch, rank, worker) and never on earlier epochs (exact resume).
    ``batch_size`` is the per-process micro-batch (see ``per_process_batch``).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int,
        ctx: DistContext,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
    ) -> None:
        self.seed, self.ctx, self.dataset = seed, ctx, dataset
        self.generator = loader_generator(seed, 0, ctx.rank)
        self.worker_seeder = WorkerSeeder(seed, ctx.rank)
        if ctx.is_distributed:
            sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed, drop_last=True)
        else:
            sampler = RandomSampler(dataset, generator=self.generator)
        self.sampler = sampler
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate_fn,
            pin_memory=pin_memory,
            drop_last=True,
            worker_init_fn=self.worker_seeder if num_workers > 0 else None,
            generator=self.generator,
            persistent_workers=False,
        )
        if len(self.loader) == 0:
            raise SevereError(
                f"training set has {len(dataset)} items: fewer than one batch of {batch_size} per process "
                f"× {ctx.world_size} processes; lower the batch size"
            )

    def __len__(self) -> int:
        return len(self.loader)

    def for_epoch(self, epoch: int) -> DataLoader:
        loader_generator(self.seed, epoch, self.ctx.rank, self.generator)
        self.worker_seeder.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):  # datasets that draw their random clips from (seed, epoch, index)
            self.dataset.set_epoch(epoch)
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)
        return self.loader


def build_eval_loader(
    dataset: Dataset,
    batch_size: int,
    ctx: DistContext,
    *,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """In-order loader over this rank's contiguous, batch-aligned shard (no padding, no duplicates)."""
    if len(dataset) == 0:
        raise SevereError("evaluation: the dataset is empty")
    shard = Subset(dataset, list(shard_range(len(dataset), ctx.rank, ctx.world_size, block=batch_size)))
    return DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        drop_last=False,
        worker_init_fn=WorkerSeeder(0, ctx.rank) if num_workers > 0 else None,
    )
