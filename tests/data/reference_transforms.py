"""Frozen copy of the training transform as it was before the planar rewrite (the oracle of the tests).

``reference_apply(transform, video, params)`` is the old ``TrainTransform.apply``: resized crop of the full
frame, flip, colour jitter on float ``[T, H, W, 3]`` (ops in v2's order, uint8 truncation between them),
normalisation. The uint8 OpenCV implementation must return the same tensors up to rounding
(tests/data/test_fast_paths.py states the tolerance).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F


def reference_color_jitter(video, order, brightness, contrast, saturation, hue):
    x = video.movedim(-3, -1).to(torch.float32)
    if not x.is_contiguous():
        x = x.contiguous()
    for op in order:
        if op == 0:
            x.mul_(brightness).clamp_(0.0, 255.0).trunc_()
        elif op == 1:
            mean = _grey(x).mean(dim=(-3, -2, -1), keepdim=True)
            _blend_(x, mean, contrast)
        elif op == 2:
            _blend_(x, _grey(x), saturation)
        elif op == 3:
            x = _hue(x, hue)
    return x


def _grey(x):
    r, g, b = x.unbind(-1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(-1)


def _blend_(x, other, ratio):
    x.mul_(ratio).add_(other, alpha=1.0 - ratio).clamp_(0.0, 255.0).trunc_()


def _hue(x, hue_factor):
    if hue_factor == 0.0 or x.numel() == 0:
        return x
    shape = x.shape
    hsv = cv2.cvtColor(x.numpy().reshape(-1, shape[-2], 3), cv2.COLOR_RGB2HSV)
    hsv[..., 0] += 360.0 * hue_factor + (360.0 if hue_factor < 0 else 0.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    rgb *= (256.0 - 1e-3) / 255.0
    np.trunc(rgb, out=rgb)
    return torch.from_numpy(rgb).view(shape)


def reference_normalize(norm, video):
    t, c, h, w = video.shape
    out = torch.empty((c, t, h, w), dtype=torch.float32)
    out.copy_(video.permute(1, 0, 2, 3))
    if norm.mean is None:
        out.mul_(1.0 / 255.0)
    else:
        scale = torch.tensor([1.0 / (255.0 * s) for s in norm.std]).view(3, 1, 1, 1)
        shift = torch.tensor([m / s for m, s in zip(norm.mean, norm.std)]).view(3, 1, 1, 1)
        out.mul_(scale).sub_(shift)
    if norm.channel_order == "BGR":
        out = out.flip(0)
    return out


def reference_apply(transform, video, p):
    c = p.crop
    x = F.resized_crop(video, c.top, c.left, c.height, c.width, [transform.size, transform.size],
                       interpolation=InterpolationMode.BILINEAR, antialias=True)
    if p.flip:
        x = F.horizontal_flip(x)
    if p.jitter_order:
        x = reference_color_jitter(x, p.jitter_order, p.brightness, p.contrast, p.saturation, p.hue)
        return reference_normalize(transform.norm, x.permute(0, 3, 1, 2))
    return reference_normalize(transform.norm, x)
