"""Precise BatchNorm statistics (PySlowFast ``BN.USE_PRECISE_STATS``, fvcore ``update_bn_stats``).

With every BatchNorm's momentum set to 1, run the model in training mode on N training batches without
gradients and set each running mean/variance to the plain average of the per-batch statistics. Used by
Charades (every checkpoint epoch and the last) and by recognition recipes that ask for it (EK-100).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from severe.engine.seeding import derive_seed

__all__ = ["PreciseBN", "update_bn_stats"]

PRECISE_BN_STREAM = 7  # seed-derivation tag of the precise-BN batches (distinct from the training stream)


@torch.no_grad()
def update_bn_stats(model: nn.Module, batches: Iterable[Any], num_batches: int,
                    forward: Callable[[nn.Module, Any], Any]) -> int:
    """Replace BatchNorm running statistics by their average over up to ``num_batches`` batches.

    ``forward(model, batch)`` runs one batch (moving it to the model's device). Returns the number of
    batches used (0 leaves the statistics unchanged). The model is left in training mode, except BatchNorm
    modules whose statistics are frozen for training (:func:`severe.engine.freezing.freeze_bn_statistics`):
    they collect statistics here and are back in eval mode afterwards.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    model.train()
    modes, momenta = [bn.training for bn in bns], [bn.momentum for bn in bns]
    means = [torch.zeros_like(bn.running_mean) for bn in bns]
    variances = [torch.zeros_like(bn.running_var) for bn in bns]
    used = 0
    try:
        for bn in bns:
            bn.training, bn.momentum = True, 1.0  # also BatchNorms pinned in eval mode
        for i, batch in enumerate(itertools.islice(batches, num_batches)):
            forward(model, batch)
            for bn, mean, var in zip(bns, means, variances):
                mean += (bn.running_mean - mean) / (i + 1)
                var += (bn.running_var - var) / (i + 1)
            used = i + 1
    finally:
        for bn, momentum, mode in zip(bns, momenta, modes):
            bn.momentum, bn.training = momentum, mode
    if used:
        for bn, mean, var in zip(bns, means, variances):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
    return used


class PreciseBN:
    """Trainer ``val_fn``: precise BN statistics after every ``period``-th epoch (0 = never) and after the last.

    ``dataset`` is the training dataset (with ``seed`` and ``set_epoch``; items start with the clip). The
    batches are drawn from (seed, epoch) on their own stream, identical on every rank, so every process
    computes the same statistics and training randomness is untouched.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, num_batches: int, period: int, epochs: int,
                 seed: int, num_workers: int, device: torch.device) -> None:
        self.dataset, self.batch_size, self.num_batches = dataset, batch_size, num_batches
        self.period, self.epochs, self.seed = period, epochs, seed
        self.num_workers, self.device = num_workers, device

    def due(self, epoch: int) -> bool:
        return epoch + 1 == self.epochs or (self.period > 0 and (epoch + 1) % self.period == 0)

    def __call__(self, model: nn.Module, epoch: int) -> dict:
        if not self.due(epoch):
            return {"precise_bn": False}
        view = copy.copy(self.dataset)
        view.seed = derive_seed(self.seed, PRECISE_BN_STREAM)
        view.set_epoch(epoch)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, PRECISE_BN_STREAM, epoch))
        loader = DataLoader(view, batch_size=self.batch_size, sampler=RandomSampler(view, generator=generator),
                            drop_last=True, num_workers=self.num_workers)
        used = update_bn_stats(model, loader, self.num_batches,
                               lambda m, batch: m(batch[0].to(self.device, non_blocking=True)))
        return {"precise_bn": True, "batches": used}
