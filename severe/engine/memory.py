"""Will a training batch fit in RAM? A CPU run whose activations exceed the memory is killed by the
out-of-memory killer with a bare "Killed", hours later; this check refuses it before anything starts.

How the estimate is made: the backbone of the run is built on PyTorch's ``meta`` device (shapes only: no
memory, no compute, no random draw) and run forward on one training clip (3 x T x S x S from the config).
Every leaf module's output is a tensor autograd keeps for the backward pass (inplace ReLUs add none), so
their summed size is the activation memory of one sample; the backward pass holds gradients of a similar
size at its peak, hence :data:`BACKWARD_FACTOR` (measured: R(2+1)D-18, 16 x 64 x 64 clips, batch 6 on the
CPU peaked at 1.43 x the summed leaf outputs, weight gradients included). Optimiser state, data loading and
the task's head are left out. A batch whose clips are so small that even :data:`FAST_BOUND` x their size fits
is not sized at all (the tiny test runs).
"""

from __future__ import annotations

import logging
import os

import torch
from fvcore.common.config import CfgNode
from torch import nn

from severe.errors import SevereError

log = logging.getLogger(__name__)

BACKWARD_FACTOR = 1.4  # peak of forward + backward / summed leaf outputs (measured 1.43, see above)
FAST_BOUND = 4000  # activation bytes per input byte no supported backbone reaches (R(2+1)D-18: ~210)

# (frames key, frames multiplier, crop key) of each config schema's training clip; the first whose keys exist
CLIP_KEYS: list[tuple[str, int, str]] = [
    ("MODEL.FRAMES_PER_STREAM", 2, "DATA.CROP"),  # repetition counting: two streams side by side in time
    ("DATA.NUM_FRAMES", 1, "DATA.TRAIN_CROP_SIZE"),  # AVA, Charades
    ("DATA.NUM_FRAMES", 1, "DATA.CROP"),  # recognition
]


def _get(cfg: CfgNode, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return None
        node = node[part]
    return node


def training_clip(cfg: CfgNode) -> tuple[int, int] | None:
    """(frames, crop) of one training clip of ``cfg``, or None when no known schema matches."""
    for frames_key, factor, crop_key in CLIP_KEYS:
        frames, crop = _get(cfg, frames_key), _get(cfg, crop_key)
        if isinstance(frames, int) and isinstance(crop, int):
            return frames * factor, crop
    return None


def available_ram() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` of /proc/meminfo, else sysconf)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def activation_bytes_per_sample(arch: str, frames: int, crop: int) -> int:
    """Summed output size of every leaf module of ``arch``'s backbone for one 3 x frames x crop x crop clip
    (float32), computed on the meta device."""
    from severe.models import build_backbone

    rng = torch.get_rng_state()
    with torch.device("meta"):
        model = build_backbone(arch)
    torch.set_rng_state(rng)  # builders draw nothing on meta; keep the run's stream untouched regardless
    total = 0

    def count(module: nn.Module, inputs, output) -> None:
        nonlocal total
        if getattr(module, "inplace", False):
            return
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * 4

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        model.train()
        model(torch.empty(1, 3, frames, crop, crop, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return total


def check_cpu_training_memory(cfg: CfgNode, arch: str, world_size: int = 1) -> None:
    """SevereError (one line, with the largest batch that fits) when the per-process training batch of
    ``cfg`` needs more memory than is available; silent when it fits or cannot be estimated (logged)."""
    if _get(cfg, "TRAIN.MODE") not in (None, "finetune"):  # linear probe / kNN: no backbone activations kept
        return
    clip = training_clip(cfg)
    free = available_ram()
    if clip is None or free is None or not arch:
        log.debug("CPU memory check skipped (clip %s, available %s, arch %r)", clip, free, arch)
        return
    batch = max(int(cfg.TRAIN.BATCH_SIZE) // max(int(world_size), 1), 1)
    if batch * 3 * clip[0] * clip[1] ** 2 * 4 * FAST_BOUND < free:
        return
    try:
        per_sample = activation_bytes_per_sample(arch, *clip)
    except Exception as e:  # a backbone the meta device cannot run: no estimate, say so
        log.info("CPU memory check skipped: %s cannot be sized on the meta device (%s)", arch, e)
        return
    need_one = int(per_sample * BACKWARD_FACTOR)
    need = need_one * batch
    log.debug("CPU memory: %.2f GB per sample x %d = %.2f GB (available %.2f GB)", need_one / 1e9, batch,
              need / 1e9, free / 1e9)
    if need > free:
        fits = free // need_one if need_one else batch
        hint = (f"set TRAIN.BATCH_SIZE {fits * max(int(world_size), 1)} or lower" if fits >= 1 else
                "reduce DATA.NUM_FRAMES or the crop size")
        raise SevereError(
            f"TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} of {clip[0]}x{clip[1]}x{clip[1]} clips needs about "
            f"{need / 2**30:.1f} GiB for {arch}'s activations on the CPU, but only {free / 2**30:.1f} GiB are "
            f"available; the largest batch that fits is {fits}: {hint} (or train on a GPU)")
