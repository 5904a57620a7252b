"""Clip transforms on uint8 video tensors ``[T, C, H, W]`` (torchvision.transforms.v2 functional ops).

Training (docs/protocol.md §1.4): RandomResizedCrop(112, scale (0.08, 1), ratio (3/4, 4/3), bilinear,
antialias) -> horizontal flip p 0.5 -> colour jitter (brightness/contrast/saturation 0.4, hue 0.2,
always applied, the four ops in random order) -> float [0, 1] -> normalise -> optional RGB->BGR,
output float ``[C, T, H, W]``. The random parameters are drawn **once per clip** from a
``torch.Generator`` (same draws and ranges as v2's ``RandomResizedCrop`` and ``ColorJitter``) and
applied identically to every frame, so a clip's augmentation is reproducible from its seed.

Test (docs/protocol.md §4): resize the short side to 128 (bilinear, antialias) -> centre crop 112 -> the
same normalisation. ``TestTransform.spatial`` (uint8 -> uint8) and ``finish`` (uint8 -> normalised
float ``[C, T, H, W]``) are separate so that the loader can shrink frames as they are decoded.

Everything stays uint8 until the normalisation; cropping happens before resizing, and the loader may read
only the crop box of each frame (``apply(..., cropped=True)``). Frames are best passed channels-last
(``torch.from_numpy(frames_thwc).permute(0, 3, 1, 2)``, no copy): torch's uint8 antialiased resize is ~2x
faster on that layout, with identical results. The resized clip is then handled as one uint8 image
``[T * S, S, 3]`` (frames stacked vertically) by OpenCV: flip in place, colour jitter
(:func:`jitter_hwc_`: v2's formulas on uint8, truncated like v2, a few whole-clip passes; hue through
OpenCV's float HSV conversion, 10x faster than v2's tensor kernel), then one normalisation pass per channel
into the float ``[C, T, S, S]`` output. Results equal v2's op by op up to float rounding (a level where the
exact blend is an integer that float32 arithmetic misses, one level for hue on ~0.02 % of values);
temporaries live in reused per-thread buffers (:func:`scratch`). Normalisation and channel order come from
the checkpoint's ``meta`` (:meth:`Normalization.from_meta`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from severe.errors import SevereError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Normalization",
    "CropBox",
    "ClipParams",
    "TrainTransform",
    "TestTransform",
    "sample_resized_crop",
    "sample_short_side_crop",
    "short_side_size",
    "ShortSideJitter",
    "JitterCrop",
    "make_generator",
    "adjust_hue",
    "color_jitter",
    "jitter_hwc_",
    "scratch",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class Normalization:
    """Input convention of a backbone: mean/std on [0, 1] RGB values (or none) and channel order.

    ``mean``/``std`` are given in RGB order and applied before an optional swap to BGR.
    """

    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    std: tuple[float, float, float] | None = IMAGENET_STD
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise SevereError(f"normalisation needs both mean and std or neither (mean={self.mean}, std={self.std})")
        if self.mean is not None:
            if len(self.mean) != 3 or len(self.std) != 3:
                raise SevereError(f"normalisation mean/std need 3 values each (mean={self.mean}, std={self.std})")
            if min(self.std) <= 0:
                raise SevereError(f"normalisation std must be > 0, got {self.std}")
            object.__setattr__(self, "mean", tuple(float(x) for x in self.mean))
            object.__setattr__(self, "std", tuple(float(x) for x in self.std))
        if self.channel_order not in _ORDERS:
            raise SevereError(f"channel_order must be one of {_ORDERS}, got {self.channel_order!r}")

    @classmethod
    def from_meta(
        cls,
        meta: dict | None,
        task_mean: Sequence[float] | None = None,
        task_std: Sequence[float] | None = None,
    ) -> "Normalization":
        """The convention recorded in a converted checkpoint's ``meta`` (docs/checkpoints.md §2).

        ``meta=None`` (no checkpoint, e.g. scratch) -> ImageNet, RGB. ``normalize: null`` (TCLR) -> no
        normalisation whatever the task; otherwise a task's own constants (``task_mean``/``task_std``,
        AVA/Charades/EK-100) replace the meta's values.
        """
        if meta is None:
            meta = {"normalize": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}, "channel_order": "RGB"}
        for key in ("normalize", "channel_order"):
            if key not in meta:
                raise SevereError(f"checkpoint meta lacks '{key}'; re-convert the checkpoint with `severe convert`")
        norm = meta["normalize"]
        order = meta["channel_order"]
        if norm is None:
            return cls(None, None, order)
        if task_mean is not None or task_std is not None:
            return cls(_triple(task_mean, "task mean"), _triple(task_std, "task std"), order)
        if not isinstance(norm, dict) or "mean" not in norm or "std" not in norm:
            raise SevereError(f"checkpoint meta 'normalize' must be null or {{mean, std}}, got {norm!r}")
        return cls(_triple(norm["mean"], "meta normalize.mean"), _triple(norm["std"], "meta normalize.std"), order)

    def affine(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """Per RGB channel ``(scale, shift)`` with normalised = ``x * scale - shift`` for ``x`` on the 0..255
        scale: ``1 / (255 std)`` and ``mean / std`` (no normalisation: ``1 / 255`` and 0)."""
        if self.mean is None:
            return (1.0 / 255.0,) * 3, (0.0,) * 3
        return (tuple(1.0 / (255.0 * s) for s in self.std),  # type: ignore[return-value]
                tuple(m / s for m, s in zip(self.mean, self.std)))

    def apply(self, video: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``[T, C, H, W]`` on the 0..255 scale (uint8, or float holding uint8 values) -> float32
        ``[C, T, H, W]``: /255, (x - mean)/std, channel order. ``out``: a contiguous float32 ``[C, T, H, W]``
        tensor (e.g. a slot of a batch) written and returned instead of a new tensor."""
        if video.ndim != 4 or video.shape[1] != 3 or not (video.dtype == torch.uint8 or video.is_floating_point()):
            raise ValueError(f"expected uint8 or float [T, 3, H, W], got {video.dtype} {tuple(video.shape)}")
        t, c, h, w = video.shape
        _check_out(out, (c, t, h, w), torch.float32)
        x = self.apply_planar_(_planar(video, out, torch.float32))
        if out is not None and x.data_ptr() != out.data_ptr():  # the BGR swap made a new tensor
            out.copy_(x)
            return out
        return x

    def apply_hwc(self, rgb: np.ndarray, frames: int, out: np.ndarray | None = None) -> torch.Tensor | None:
        """uint8 RGB ``[frames * H, W, 3]`` (frames stacked vertically) -> float32 ``[C, frames, H, W]``:
        each channel widened into its output plane, then ``x * scale - shift`` in place (same values as
        :meth:`apply` up to float rounding), channel order included. With ``out`` (float32 ``[3, frames * H,
        W]``, e.g. rows of a bigger output) the planes are written there and None is returned."""
        th, w, _ = rgb.shape
        result = None
        if out is None:
            result = torch.empty((3, frames, th // frames, w), dtype=torch.float32)
            out = result.numpy().reshape(3, th, w)
        dst = out
        planes = cv2.split(rgb)
        scale, shift = self.affine()
        for k, c in enumerate((2, 1, 0) if self.channel_order == "BGR" else (0, 1, 2)):
            np.copyto(dst[k], planes[c])  # widen, then scale and shift in place (faster than one mixed-depth op)
            cv2.addWeighted(dst[k], scale[c], dst[k], 0.0, -shift[c], dst=dst[k])
        return result

    def apply_planar_(self, x: torch.Tensor) -> torch.Tensor:
        """In place on float32 ``[C, T, H, W]`` on the 0..255 scale: /255, (x - mean)/std; then the channel
        order (a BGR swap returns a new tensor)."""
        if self.mean is None:
            x.mul_(1.0 / 255.0)
        else:
            scale, shift = self.affine()
            x.mul_(torch.tensor(scale).view(3, 1, 1, 1)).sub_(torch.tensor(shift).view(3, 1, 1, 1))
        if self.channel_order == "BGR":
            x = x.flip(0)
        return x


def _check_out(out: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """ValueError unless ``out`` is None or a contiguous ``dtype`` tensor of ``shape`` (an ``out=`` argument)."""
    if out is not None and (tuple(out.shape) != shape or out.dtype != dtype or not out.is_contiguous()):
        raise ValueError(f"out must be a contiguous {dtype} {shape} tensor, got {out.dtype} {tuple(out.shape)}"
                         f"{'' if out.is_contiguous() else ' (not contiguous)'}")


def _planar(video: torch.Tensor, out: torch.Tensor | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[T, C, H, W]`` (any memory layout, uint8 or float) -> ``dtype`` ``[C, T, H, W]`` (one copy), a new
    tensor or ``out`` (contiguous, that shape)."""
    t, c, h, w = video.shape
    if out is None:
        out = torch.empty((c, t, h, w), dtype=dtype)
    if c == 3 and video.dtype == torch.uint8 and t * h * w > 0 and video.is_contiguous(memory_format=torch.channels_last):
        # channels-last uint8 (the resize's output): OpenCV's SIMD de-interleave, then copy (widen) per plane
        planes = cv2.split(video.permute(0, 2, 3, 1).numpy().reshape(t * h, w, 3))
        dst = out.numpy().reshape(3, t * h, w)
        for k in range(3):
            dst[k] = planes[k]
        return out
    out.copy_(video.permute(1, 0, 2, 3))
    return out


def _triple(values, what: str) -> tuple[float, float, float]:
    if values is None:
        raise SevereError(f"{what} is missing")
    vals = [float(v) for v in values] if isinstance(values, (list, tuple)) else [float(values)] * 3
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise SevereError(f"{what} needs 1 or 3 values, got {values!r}")
    return tuple(vals)  # type: ignore[return-value]


def make_generator(seed_or_generator: int | torch.Generator | None) -> torch.Generator | None:
    """A ``torch.Generator`` from a seed (a generator is returned as is; None = torch's global RNG)."""
    if seed_or_generator is None or isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    return torch.Generator().manual_seed(int(seed_or_generator))


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return float(torch.empty(1).uniform_(lo, hi, generator=g).item())


@dataclass(frozen=True)
class CropBox:
    top: int
    left: int
    height: int
    width: int


def sample_resized_crop(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None,
) -> CropBox:
    """RandomResizedCrop's box: area fraction U(scale), aspect log-uniform in ratio, 10 attempts,
    then the centre crop with the aspect clamped to ``ratio`` (torchvision's algorithm)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator).item())
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator).item())
            return CropBox(top, left, h, w)
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return CropBox((height - h) // 2, (width - w) // 2, h, w)


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(new height, new width) with the short side ``size`` and the long side floor(long / short * size)
    (PySlowFast's rule; a frame whose short side already is ``size`` keeps its size)."""
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if width < height:
        return int(math.floor(float(height) / width * size)), size
    return size, int(math.floor(float(width) / height * size))


def _rounded_size(height: int, width: int, size: int, crop: int) -> tuple[int, int]:
    """Both sides scaled by size / short side and rounded, at least ``crop`` (the EPIC recipe's rule)."""
    scale = size / min(height, width)
    return max(crop, round(height * scale)), max(crop, round(width * scale))


# how the frame is resized for a drawn short side S: (height, width, S, crop) -> (new height, new width)
_RESIZE_RULES = {
    "floor": lambda height, width, size, crop: short_side_size(height, width, size),
    "round": _rounded_size,
}


def _draw_integer(rng: np.random.Generator | torch.Generator | None, low: int, high: int) -> int:
    """An integer uniform in [low, high] (inclusive) from a numpy or torch generator (None = torch's global RNG).
    A numpy generator draws nothing when low == high."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high, endpoint=True))
    return int(torch.randint(low, high + 1, (1,), generator=rng).item())


def _draw_uniform(rng: np.random.Generator | torch.Generator | None, low: float, high: float) -> float:
    if isinstance(rng, np.random.Generator):
        return float(rng.uniform(low, high))
    return _uniform(low, high, rng)


# how the short side S is drawn from [low, high]
_SHORT_SIDE_DRAWS = {
    "integer": _draw_integer,  # uniform over the integers
    "uniform": lambda rng, low, high: int(round(_draw_uniform(rng, low, high))),  # round(U(low, high))
    "inverse": lambda rng, low, high: int(round(1.0 / _draw_uniform(rng, 1.0 / high, 1.0 / low))),  # round(1 / U(1/high, 1/low))
}


@dataclass(frozen=True)
class JitterCrop:
    """One draw of :class:`ShortSideJitter`: the frame resized to ``height`` x ``width`` (short side
    ``short_side``), then the ``size`` x ``size`` window at (``top``, ``left``)."""

    short_side: int
    height: int
    width: int
    top: int
    left: int
    size: int

    def source_box(self, height: int, width: int) -> CropBox:
        """The window mapped back to the pixels of the ``height`` x ``width`` source frame (square), so that
        resizing the box to ``size`` x ``size`` equals resize-then-crop (one interpolation less)."""
        scale = self.short_side / min(height, width)
        side = min(round(self.size / scale), height, width)
        return CropBox(min(round(self.top / scale), height - side), min(round(self.left / scale), width - side),
                       side, side)


@dataclass(frozen=True)
class ShortSideJitter:
    """Short-side scale jitter + random square crop: the training view of PySlowFast (AVA, Charades) and of
    the EPIC recipe (EK-100, DATA.TRAIN_SHORT_SIDE).

    The short side S is drawn from [``low``, ``high``] by ``draw`` ("integer": uniform over the integers;
    "uniform": round(U(low, high)); "inverse": round(1 / U(1/high, 1/low)), PySlowFast's
    DATA.INV_UNIFORM_SAMPLE); the frame is resized by ``resize`` ("floor": short side S, long side
    floor(long / short * S); "round": both sides rounded, at least ``crop``); then a ``crop`` x ``crop``
    window (smaller if the resized frame is) is placed uniformly: offsets in [0, side - crop], inclusive,
    drawn when the crop fits that side, else 0. Draw order: S, top, left. ``sample`` takes a numpy or a
    torch generator (bit-exact with the numpy/torch draws the callers made before this class existed).
    """

    low: int
    high: int
    crop: int
    draw: str = "integer"
    resize: str = "round"

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise SevereError(f"short-side jitter range ({self.low}, {self.high}): need 0 < low <= high")
        if self.draw not in _SHORT_SIDE_DRAWS or self.resize not in _RESIZE_RULES:
            raise ValueError(f"draw must be one of {list(_SHORT_SIDE_DRAWS)} and resize one of "
                             f"{list(_RESIZE_RULES)}, got {self.draw!r}, {self.resize!r}")

    def sample(self, height: int, width: int, rng: np.random.Generator | torch.Generator | None) -> JitterCrop:
        """Draw S, resize (height, width) for it, and draw the window's offsets."""
        s = _SHORT_SIDE_DRAWS[self.draw](rng, self.low, self.high)
        h, w = _RESIZE_RULES[self.resize](height, width, s, self.crop)
        top = _draw_integer(rng, 0, h - self.crop) if h >= self.crop else 0
        left = _draw_integer(rng, 0, w - self.crop) if w >= self.crop else 0
        return JitterCrop(s, h, w, top, left, min(self.crop, h, w))


def sample_short_side_crop(
    height: int,
    width: int,
    short_side: tuple[int, int],
    size: int,
    generator: torch.Generator | None,
) -> CropBox:
    """The EK-100 training view (:class:`ShortSideJitter`, integer draw, rounded resize) as a square box of
    the source frame (:meth:`JitterCrop.source_box`). Draw order: S, top, left."""
    jitter = ShortSideJitter(int(short_side[0]), int(short_side[1]), size, draw="integer", resize="round")
    return jitter.sample(height, width, generator).source_box(height, width)


@dataclass(frozen=True)
class ClipParams:
    """The random parameters of one training clip."""

    crop: CropBox
    flip: bool
    jitter_order: tuple[int, ...]  # 0 brightness, 1 contrast, 2 saturation, 3 hue
    brightness: float
    contrast: float
    saturation: float
    hue: float


# added before OpenCV's round-to-nearest uint8 saturation so that it truncates like v2's float -> uint8
# (floor of values in [0, 256)); only results within 2^-15 below an integer round up instead
_TRUNC = -0.5 + 2.0**-15
# v2's uint8 grayscale is floor(0.2989 R + 0.587 G + 0.114 B): computed by cv2.transform on float32 pixels
# (OpenCV's uint8 transform is slower, and its 3 -> 3 channel variant has 10-bit fixed-point weights)
_GREY = np.array([[0.2989, 0.587, 0.114]], dtype=np.float32)


_SCRATCH = threading.local()
_SCRATCH_MAX_BYTES = 64 << 20
_CHUNK_FRAMES = 8  # frames per pass of the training path's flip / jitter / normalisation


def scratch(key: str, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """A reusable array of ``shape`` for temporaries, one per ``key`` and thread (grown on demand, never
    shrunk; requests above 64 MB get a fresh array). Its content is undefined; it stays valid until the next
    request for the same ``key``.

    Reusing memory matters on the loader's hot path: fresh multi-megabyte arrays are page-faulted in on
    every clip (a few ms per clip on one core).
    """
    bufs = _SCRATCH.__dict__
    n = math.prod(shape) * np.dtype(dtype).itemsize
    if n > _SCRATCH_MAX_BYTES:  # e.g. full-HD crop boxes: not worth keeping for the process's lifetime
        return np.empty(shape, dtype=dtype)
    buf = bufs.get(key)
    if buf is None or buf.size < n:
        buf = bufs[key] = np.empty(max(n, 1), dtype=np.uint8)
    return buf[:n].view(dtype).reshape(shape)


def _grey_f32(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 copy of uint8 ``[N, W, 3]``, its v2 grayscale ``[N, W]`` as float32 integers), in scratch."""
    x = scratch("jitter_rgb", rgb.shape, np.float32)
    np.copyto(x, rgb)
    grey = cv2.transform(x, _GREY, dst=scratch("jitter_grey", rgb.shape[:2], np.float32))
    return x, np.floor(grey, out=grey)


def color_jitter(video: torch.Tensor, order: Sequence[int], brightness: float, contrast: float,
                 saturation: float, hue: float) -> torch.Tensor:
    """v2 ``ColorJitter`` with fixed factors on uint8 ``[T, 3, H, W]`` frames -> float ``[T, H, W, 3]``.

    ``order`` lists the ops (0 brightness, 1 contrast, 2 saturation, 3 hue) in application order; the
    result holds the integers in [0, 255] that :func:`jitter_hwc_` computes (float32 for the callers that
    compare against float references).
    """
    if video.ndim != 4 or video.shape[-3] != 3:
        raise ValueError(f"expected frames [T, 3, H, W], got shape {tuple(video.shape)}")
    t, _, h, w = video.shape
    rgb = video.permute(0, 2, 3, 1).numpy().copy(order="C").reshape(t * h, w, 3)  # jitter works in place
    out = jitter_hwc_(rgb, t, order, brightness, contrast, saturation, hue)
    return torch.from_numpy(out.reshape(t, h, w, 3).astype(np.float32))


def jitter_hwc_(rgb: np.ndarray, frames: int, order: Sequence[int], brightness: float, contrast: float,
                saturation: float, hue: float) -> np.ndarray:
    """v2 ``ColorJitter`` with fixed factors on uint8 RGB ``[frames * H, W, 3]`` (the clip's frames stacked
    vertically, C-contiguous), in place; returns ``rgb``.

    Each op is v2's on uint8 (blend ``x * f + other * (1 - f)``, clamp, truncation to uint8; grayscale
    ``floor(0.2989 R + 0.587 G + 0.114 B)``; contrast against each frame's mean grey; hue through HSV),
    computed by one or two OpenCV passes on the uint8 pixels instead of torch float passes: truncation
    is OpenCV's rounding of ``value - 0.4995``, and the hue step uses OpenCV's float HSV conversion
    (v2's tensor kernel costs ~20 ms per 32x112x112 clip on one core). Results equal v2's up to the float
    rounding of the blends (a level where the exact value lies within 5e-4 below an integer) and, for
    hue, one level on ~0.02 % of values.
    """
    for op in order:
        if op not in _JITTER_OPS:
            raise ValueError(f"unknown colour-jitter op {op}")
        f = (brightness, contrast, saturation, hue)[op]
        if rgb.size:
            rgb = _JITTER_OPS[op](rgb, frames, f)
    return rgb


def _brightness_u8(rgb: np.ndarray, frames: int, f: float) -> np.ndarray:
    return cv2.convertScaleAbs(rgb, dst=rgb, alpha=f, beta=_TRUNC)  # f * x >= 0: abs() does nothing


def _contrast_u8(rgb: np.ndarray, frames: int, f: float) -> np.ndarray:
    th, w, _ = rgb.shape
    grey = _grey_f32(rgb)[1].reshape(frames, th // frames, w)
    clip = rgb.reshape(frames, th // frames, w, 3)
    for t in range(frames):  # blend with the frame's mean grey (a constant per frame)
        cv2.addWeighted(clip[t], f, clip[t], 0.0, (1.0 - f) * cv2.mean(grey[t])[0] + _TRUNC, dst=clip[t])
    return rgb


def _saturation_u8(rgb: np.ndarray, frames: int, f: float) -> np.ndarray:
    x, grey = _grey_f32(rgb)
    grey3 = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB, dst=scratch("jitter_grey3", rgb.shape, np.float32))
    return cv2.addWeighted(x, f, grey3, 1.0 - f, _TRUNC, dst=rgb, dtype=cv2.CV_8U)


def _hue_u8(rgb: np.ndarray, frames: int, hue_factor: float) -> np.ndarray:
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    if hue_factor == 0.0:
        return rgb
    x = scratch("jitter_rgb", rgb.shape, np.float32)
    np.copyto(x, rgb)
    cv2.cvtColor(x, cv2.COLOR_RGB2HSV, dst=x)
    # degrees in [0, 360) -> [0, 720); OpenCV's HSV->RGB wraps hue >= 360 itself (tested)
    cv2.add(x, (360.0 * hue_factor + (360.0 if hue_factor < 0 else 0.0), 0.0, 0.0, 0.0), dst=x)
    cv2.cvtColor(x, cv2.COLOR_HSV2RGB, dst=x)
    # v2: float in [0, 1] * (255 + 1 - 1e-3), truncated
    return cv2.convertScaleAbs(x, dst=rgb, alpha=(256.0 - 1e-3) / 255.0, beta=_TRUNC)


# op index of ClipParams.jitter_order -> uint8 op (rgb [frames * H, W, 3], frames, factor) -> rgb
_JITTER_OPS = {0: _brightness_u8, 1: _contrast_u8, 2: _saturation_u8, 3: _hue_u8}


def adjust_hue(video: torch.Tensor, hue_factor: float) -> torch.Tensor:
    """Hue shift of uint8 ``[..., 3, H, W]`` frames (v2 ``adjust_hue`` within one level, 10x faster)."""
    if video.shape[-3] != 3:
        raise ValueError(f"hue needs 3 channels, got shape {tuple(video.shape)}")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    hwc = video.movedim(-3, -1).contiguous()
    rgb = hwc.numpy().reshape(-1, hwc.shape[-2], 3).copy()
    if rgb.size:
        rgb = _hue_u8(rgb, 1, hue_factor)
    return torch.from_numpy(rgb).view(hwc.shape).movedim(-1, -3)


class TrainTransform:
    """Training augmentation of docs/protocol.md §1.4: ``(uint8 [T,C,H,W], generator) -> float [C,T,S,S]``."""

    def __init__(
        self,
        size: int = 112,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] | None = (0.4, 0.4, 0.4, 0.2),
        norm: Normalization = Normalization(),
        short_side: tuple[int, int] | None = None,
    ) -> None:
        self.size = int(size)
        self.short_side = None if short_side is None else ShortSideJitter(
            int(short_side[0]), int(short_side[1]), self.size, draw="integer", resize="round")
        self.scale = scale
        self.ratio = ratio
        self.flip_p = flip_p
        self.jitter = jitter
        self.norm = norm

    def sample(self, height: int, width: int, generator: torch.Generator | None) -> ClipParams:
        """Draw one clip's parameters (crop, flip, then jitter order and factors as v2 ColorJitter). The crop is
        RandomResizedCrop's, or with ``short_side`` the short-side jitter + random crop of the EK-100 recipe."""
        if self.short_side is not None:
            crop = self.short_side.sample(height, width, generator).source_box(height, width)
        else:
            crop = sample_resized_crop(height, width, self.scale, self.ratio, generator)
        flip = bool(torch.rand(1, generator=generator).item() < self.flip_p)
        if self.jitter is None:
            return ClipParams(crop, flip, (), 1.0, 1.0, 1.0, 0.0)
        b, c, s, h = self.jitter
        order = tuple(int(i) for i in torch.randperm(4, generator=generator).tolist())
        return ClipParams(
            crop,
            flip,
            order,
            _uniform(max(0.0, 1 - b), 1 + b, generator),
            _uniform(max(0.0, 1 - c), 1 + c, generator),
            _uniform(max(0.0, 1 - s), 1 + s, generator),
            _uniform(-h, h, generator),
        )

    def apply(self, video: torch.Tensor, p: ClipParams, cropped: bool = False,
              out: torch.Tensor | None = None, normalize: bool = True) -> torch.Tensor:
        """Apply fixed parameters to every frame: uint8 ``[T,C,H,W]`` -> float ``[C,T,S,S]``.

        ``cropped=True``: ``video`` already is the ``p.crop`` region of the frames (the loader read only
        that box); the result is the same as for the full frames. ``out``: a contiguous ``[C,T,S,S]`` tensor
        (e.g. a slot of a batch) written and returned instead of a new tensor. ``normalize=False``: uint8
        ``[C,T,S,S]`` RGB on the 0..255 scale (everything but the normalisation; ``self.norm`` is then applied
        where the clip is used, e.g. on the GPU by :class:`~severe.models.heads.ClipNormalizer`).
        """
        c = p.crop
        if cropped:
            if tuple(video.shape[-2:]) != (c.height, c.width):
                raise ValueError(f"cropped video is {tuple(video.shape[-2:])}, the crop box {c.height}x{c.width}")
            x = F.resize(video, [self.size, self.size], interpolation=InterpolationMode.BILINEAR, antialias=True)
        else:
            x = F.resized_crop(
                video, c.top, c.left, c.height, c.width, [self.size, self.size],
                interpolation=InterpolationMode.BILINEAR, antialias=True,
            )
        t, _, h, w = x.shape
        dtype = torch.float32 if normalize else torch.uint8
        _check_out(out, (3, t, h, w), dtype)
        if x.numel() == 0:
            if out is not None:
                return out
            return self.norm.apply(x) if normalize else x.permute(1, 0, 2, 3).contiguous()
        rgb = x.permute(0, 2, 3, 1)  # the resize keeps channels-last input channels-last: a view
        if rgb.is_contiguous() and rgb.untyped_storage().data_ptr() == video.untyped_storage().data_ptr():
            rgb = rgb.clone()  # no resampling happened (the crop has the output size): never write into the input
        rgb = (rgb if rgb.is_contiguous() else rgb.contiguous()).numpy().reshape(t * h, w, 3)
        if out is None:
            out = torch.empty((3, t, h, w), dtype=dtype)
        planes = out.numpy().reshape(3, t * h, w)
        for a in range(0, t, _CHUNK_FRAMES):  # a few frames at a time: the float temporaries stay in cache
            b = min(t, a + _CHUNK_FRAMES)
            part = rgb[a * h:b * h]
            if p.flip:
                cv2.flip(part, 1, dst=part)  # every frame of the part at once (stacked vertically), in place
            if p.jitter_order:
                jitter_hwc_(part, b - a, p.jitter_order, p.brightness, p.contrast, p.saturation, p.hue)
            if normalize:
                self.norm.apply_hwc(part, b - a, out=planes[:, a * h:b * h])
            else:  # de-interleave only: one plane per channel
                for k, plane in enumerate(cv2.split(part)):
                    np.copyto(planes[k, a * h:b * h], plane)
        return out

    def __call__(self, video: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
        _check_video(video)
        g = make_generator(generator)
        return self.apply(video, self.sample(video.shape[-2], video.shape[-1], g))


class TestTransform:
    """Test view of docs/protocol.md §4: short side -> ``resize``, centre crop ``crop``, normalise."""

    __test__ = False  # not a pytest test class

    def __init__(self, resize: int = 128, crop: int = 112, norm: Normalization = Normalization()) -> None:
        self.resize = int(resize)
        self.crop = int(crop)
        self.size = self.crop
        self.norm = norm

    def spatial(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, crop, crop]`` (frame by frame, deterministic)."""
        _check_video(frames)
        x = F.resize(frames, [self.resize], interpolation=InterpolationMode.BILINEAR, antialias=True)
        return F.center_crop(x, [self.crop, self.crop])

    def finish(self, clip: torch.Tensor, out: torch.Tensor | None = None, normalize: bool = True) -> torch.Tensor:
        """uint8 ``[T, C, crop, crop]`` -> normalised float ``[C, T, crop, crop]`` (written into ``out`` if given,
        see :meth:`Normalization.apply`); ``normalize=False``: uint8 ``[C, T, crop, crop]`` on the 0..255 scale,
        for the model to normalise (:class:`~severe.models.heads.ClipNormalizer`)."""
        if normalize:
            return self.norm.apply(clip, out=out)
        if clip.dtype != torch.uint8:
            raise ValueError(f"expected a uint8 clip, got {clip.dtype}")
        t, c, h, w = clip.shape
        _check_out(out, (c, t, h, w), torch.uint8)
        return _planar(clip, out, torch.uint8)

    def __call__(self, video: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
        return self.finish(self.spatial(video))


def _check_video(video: torch.Tensor) -> None:
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"expected a uint8 video [T, 3, H, W], got {video.dtype} {tuple(video.shape)}")
