"""The original SEVERE-style training loader, rebuilt as a baseline for bench_data_loading.py.

Approach of the original code: PyAV seeks to the window start and converts every decoded frame of the
window to a PIL image; the 16 fps frames are picked from that list; then PIL transforms frame by frame
(RandomResizedCrop, horizontal flip, colour jitter in random order with one set of parameters per clip),
``to_tensor`` and ``normalize`` per frame, stacked to ``C x T x H x W``.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import av
import torch
import torchvision.transforms as T1
import torchvision.transforms.functional as TF
from torch.utils.data import Dataset

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def decode_window_pil(path: Path, start: float, num_frames: int, fps_out: float) -> list:
    """PIL images of the ``num_frames`` 16 fps frames from ``start`` seconds (original style)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        tb = float(stream.time_base)
        end = start + num_frames / fps_out
        container.seek(int(start / tb), stream=stream)
        window = []
        first = None
        for frame in container.decode(stream):
            t = frame.pts * tb
            if t + 1e-6 < start:
                continue
            if t >= end:
                break
            if first is None:
                first = int(round(t * fps))
            window.append(frame.to_image())  # every frame of the window becomes a PIL image
    first = first or 0
    picks = [int(math.floor((start + k / fps_out) * fps + 1e-6)) - first for k in range(num_frames)]
    return [window[min(max(p, 0), len(window) - 1)] for p in picks]


def pil_clip_transform(images: list, rng: random.Random, size: int = 112) -> torch.Tensor:
    """Per-frame PIL augmentation with one parameter set per clip -> float ``C x T x H x W``."""
    state = torch.get_rng_state()
    torch.manual_seed(rng.randrange(2**31))
    i, j, h, w = T1.RandomResizedCrop.get_params(images[0], (0.08, 1.0), (3 / 4, 4 / 3))
    fn_idx, b, c, s, hue = T1.ColorJitter.get_params((0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.2, 0.2))
    torch.set_rng_state(state)
    flip = rng.random() < 0.5
    ops = (
        lambda im: TF.adjust_brightness(im, b),
        lambda im: TF.adjust_contrast(im, c),
        lambda im: TF.adjust_saturation(im, s),
        lambda im: TF.adjust_hue(im, hue),
    )
    out = []
    for im in images:
        im = TF.resized_crop(im, i, j, h, w, [size, size], interpolation=T1.InterpolationMode.BILINEAR)
        if flip:
            im = TF.hflip(im)
        for k in fn_idx.tolist():
            im = ops[k](im)
        out.append(TF.normalize(TF.to_tensor(im), MEAN, STD))
    return torch.stack(out, dim=1)


class OriginalClips(Dataset):
    """Train items of the original approach: ``(clip float [C,T,H,W], label, index)``."""

    def __init__(self, paths: list[Path], num_frames: int = 32, fps_out: float = 16.0, seed: int = 0) -> None:
        self.paths = paths
        self.num_frames = num_frames
        self.fps_out = fps_out
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        rng = random.Random(self.seed * 1_000_003 + i)
        path = self.paths[i]
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            duration = st.frames / float(st.average_rate)
        start = rng.uniform(0.0, max(duration - self.num_frames / self.fps_out, 0.0))
        images = decode_window_pil(path, start, self.num_frames, self.fps_out)
        return pil_clip_transform(images, rng), 0, i
