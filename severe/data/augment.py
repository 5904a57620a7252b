"""Training augmentation of the ViT finetuning recipe (docs/protocol.md §15) with ``torchvision.transforms.v2``,
composed around the protocol's :class:`~severe.data.transforms.TrainTransform` (crop, flip, normalisation):

* :class:`RecipeTrainTransform`: RandAugment on the uint8 frames (the same operations and magnitudes on every
  frame of a clip, before the crop, as VideoMAE), then the base transform, then random erasing of each
  normalised frame independently (random normal pixels);
* :class:`MixCut`: batch-level MixUp / CutMix (one of the two per batch) and label smoothing, giving soft targets;
* :func:`soft_target_cross_entropy`: the loss on those targets.

Every random draw comes from the clip's generator (transforms) or the trainer's seeded global stream (MixCut),
so a run is reproducible from its seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from severe.data.transforms import TrainTransform, make_generator

__all__ = ["RAND_AUGMENT_BINS", "RecipeTrainTransform", "MixCut", "soft_targets", "soft_target_cross_entropy"]

#: magnitude bins of RandAugment: magnitude m of 10 as in timm's ``rand-m7`` (``_LEVEL_DENOM`` = 10)
RAND_AUGMENT_BINS = 11


class RecipeTrainTransform:
    """``(uint8 [T,C,H,W], generator) -> float [C,T,S,S]``: RandAugment (``rand_augment`` = (magnitude, ops), None
    = off) -> ``base`` -> per-frame random erasing with probability ``erase_p``."""

    def __init__(self, base: TrainTransform, rand_augment: tuple[int, int] | None = None, erase_p: float = 0.0) -> None:
        self.base, self.size = base, base.size
        self.rand_augment = None
        if rand_augment is not None:
            magnitude, ops = (int(v) for v in rand_augment)
            self.rand_augment = v2.RandAugment(num_ops=ops, magnitude=magnitude, num_magnitude_bins=RAND_AUGMENT_BINS)
        self.erase = v2.RandomErasing(p=erase_p, value="random") if erase_p > 0 else None

    def __call__(self, video: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
        g = make_generator(generator)
        seed = int(torch.randint(2**62, (1,), generator=g))
        with torch.random.fork_rng(devices=[]):  # v2 draws from the global stream: seed it from the clip's
            torch.manual_seed(seed)
            if self.rand_augment is not None:
                video = self.rand_augment(video)  # [T,C,H,W] uint8: one draw for the whole clip
            x = self.base(video, g)
            if self.erase is not None:
                x = torch.stack([self.erase(frame) for frame in x.unbind(1)], dim=1)  # each frame on its own
        return x


def soft_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets with label smoothing: ``(1 - s) one_hot + s / C`` (rows sum to 1)."""
    onehot = F.one_hot(labels.long(), num_classes).float()
    return onehot * (1.0 - smoothing) + smoothing / num_classes


class MixCut:
    """MixUp (Beta(``mixup``, ``mixup``)) or CutMix (Beta(``cutmix``, ``cutmix``), lambda = kept area) of a batch with
    itself shifted by one sample, CutMix with probability ``switch_prob`` when both are on; targets are the
    correspondingly mixed one-hot labels, smoothed by ``smoothing``. ``__call__(clips [B,C,T,H,W], labels [B])
    -> (clips, targets [B, num_classes])``."""

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0, switch_prob: float = 0.5,
                 smoothing: float = 0.0) -> None:
        self.num_classes, self.smoothing = int(num_classes), float(smoothing)
        mixers, probs = [], []
        if mixup > 0:
            mixers.append(v2.MixUp(alpha=mixup, num_classes=self.num_classes))
            probs.append(1.0 - switch_prob if cutmix > 0 else 1.0)
        if cutmix > 0:
            mixers.append(v2.CutMix(alpha=cutmix, num_classes=self.num_classes))
            probs.append(switch_prob if mixup > 0 else 1.0)
        self.mix = None if not mixers else mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers, p=probs)

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mix is None:
            return clips, soft_targets(labels, self.num_classes, self.smoothing)
        video = tv_tensors.Video(clips.transpose(1, 2))  # v2 mixes videos laid out [B,T,C,H,W]
        mixed, targets = self.mix(video, labels.long())
        clips = mixed.as_subclass(torch.Tensor).transpose(1, 2)
        return clips, targets.float() * (1.0 - self.smoothing) + self.smoothing / self.num_classes


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c target_c log softmax(logits)_c``."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
