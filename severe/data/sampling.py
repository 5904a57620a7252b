"""Where clips come from in time: the fixed-rate timeline of docs/protocol.md §1.4 and §4, and the strided
frame-list clips of the PySlowFast tasks (AVA, Charades). Rules as pure functions, clip samplers as small
objects holding a clip's shape (like pytorchvideo's ``RandomClipSampler`` / ``UniformClipSampler``).

Every video is read on a ``target_fps`` (16) timeline: timeline frame k at time t_k = start + k/target_fps
takes source frame ``floor(t_k * src_fps)`` (counted from the first frame of the stream), so source
frames repeat when ``src_fps < target_fps`` and are skipped when it is higher.

* Training: ``start`` uniform in ``[0, duration - T/target_fps]`` (:func:`random_start`), T timeline
  frames from there (:func:`timeline_indices`). A video shorter than the clip starts at 0 and is
  **loop-padded**: the frames decoded from the clip start repeat (wrap-around) until T exist.
* Test: the whole video on the timeline (:func:`timeline_frames`, n frames), K clips starting at
  ``s_i = int(i * max(n - T, 1) / (K - 1))`` (:func:`test_clip_starts`), frames past n loop-padded
  from the clip start (:func:`clip_positions`).
* Segments of untrimmed videos (EK-100, ``start_sec``/``end_sec``): the start is drawn inside the
  segment and frame positions are **clamped** to the segment (its last frame repeats), docs/datasets.md §9.

Strided clips (frame lists): ``num_frames`` positions ``rate`` apart, clamped to the video
(:class:`StridedClip`); a random start (:class:`RandomStridedSampler`), uniformly spaced views
(:class:`UniformStridedSampler`) or a clip centred on a frame (:class:`CentredClipSampler`).

Floating-point times are floored with a tolerance of 1e-6 frames so that exact products
(e.g. t = 1.0 s at 25 fps -> frame 25) never land one frame early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "source_index",
    "timeline_length",
    "timeline_frames",
    "timeline_indices",
    "random_start",
    "test_clip_starts",
    "clip_positions",
    "segment_frames",
    "strided_positions",
    "RandomClipSampler",
    "UniformClipSampler",
    "StridedClip",
    "RandomStridedSampler",
    "UniformStridedSampler",
    "CentredClipSampler",
]

_EPS = 1e-6
_PADS = ("loop", "clamp")


def source_index(t_sec: float, src_fps: float) -> int:
    """Source frame shown at time ``t_sec``: ``floor(t_sec * src_fps)``."""
    return int(math.floor(t_sec * src_fps + _EPS))


def _check(src_fps: float, target_fps: float, src_num_frames: int) -> None:
    if not src_fps > 0 or not target_fps > 0:
        raise ValueError(f"frame rates must be > 0 (source {src_fps}, target {target_fps})")
    if src_num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {src_num_frames}")


def timeline_length(src_num_frames: int, src_fps: float, target_fps: float, start_sec: float = 0.0) -> int:
    """Number of timeline frames from ``start_sec`` whose source frame is < ``src_num_frames``."""
    _check(src_fps, target_fps, src_num_frames)
    n = max(int(math.ceil((src_num_frames / src_fps - start_sec) * target_fps)) - 1, 0)
    while source_index(start_sec + n / target_fps, src_fps) < src_num_frames:
        n += 1
    while n > 0 and source_index(start_sec + (n - 1) / target_fps, src_fps) >= src_num_frames:
        n -= 1
    return n


def timeline_frames(
    src_num_frames: int, src_fps: float, target_fps: float, start_sec: float = 0.0
) -> list[int]:
    """Source frame of every timeline frame from ``start_sec`` to the end of the video."""
    n = timeline_length(src_num_frames, src_fps, target_fps, start_sec)
    return [source_index(start_sec + k / target_fps, src_fps) for k in range(n)]


def timeline_indices(
    start_sec: float,
    num_frames_out: int,
    target_fps: float,
    src_fps: float,
    src_num_frames: int,
    pad: str = "loop",
) -> list[int]:
    """Source frames of the ``num_frames_out`` timeline frames of a clip starting at ``start_sec``.

    Frames whose source frame would be >= ``src_num_frames`` are padded: ``"loop"`` repeats the clip's
    valid frames from its start (wrap-around), ``"clamp"`` repeats the last source frame.
    """
    _check(src_fps, target_fps, src_num_frames)
    if pad not in _PADS:
        raise ValueError(f"pad must be one of {_PADS}, got {pad!r}")
    if num_frames_out < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames_out}")
    if start_sec < 0:
        raise ValueError(f"clip start must be >= 0 s, got {start_sec}")
    out: list[int] = []
    for k in range(num_frames_out):
        i = source_index(start_sec + k / target_fps, src_fps)
        if i >= src_num_frames:
            break
        out.append(i)
    if not out:
        if pad == "clamp":
            return [src_num_frames - 1] * num_frames_out
        raise ValueError(f"clip start {start_sec} s is past the end of a {src_num_frames}-frame video")
    valid = len(out)
    for k in range(valid, num_frames_out):
        out.append(out[k % valid] if pad == "loop" else src_num_frames - 1)
    return out


def random_start(duration: float, clip_seconds: float, rng: np.random.Generator) -> float:
    """Clip start uniform in ``[0, duration - clip_seconds]`` seconds (0 for videos shorter than a clip)."""
    span = duration - clip_seconds
    if span <= 0:
        return 0.0
    return float(rng.uniform(0.0, span))


def test_clip_starts(n: int, num_frames: int, num_clips: int = 10) -> list[int]:
    """Start positions (timeline frames) of the ``num_clips`` uniformly spaced test clips.

    ``s_i = int(i * max(n - T, 1) / (K - 1))``, clamped to ``max(n - T, 0)`` so that a video with
    ``n <= T`` gives K identical clips starting at 0 (docs/protocol.md §4; without the clamp the last clip
    of such a video would start at frame 1). K = 1: the centre clip ``max(n - T, 0) // 2``.
    """
    if n < 1 or num_frames < 1 or num_clips < 1:
        raise ValueError(f"need n >= 1, T >= 1, K >= 1; got n={n}, T={num_frames}, K={num_clips}")
    last = max(n - num_frames, 0)
    if num_clips == 1:
        return [last // 2]
    step = max(n - num_frames, 1)
    return [min(i * step // (num_clips - 1), last) for i in range(num_clips)]


test_clip_starts.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def clip_positions(start: int, num_frames: int, n: int, pad: str = "loop") -> list[int]:
    """Timeline positions ``start .. start+T-1`` of a clip; positions >= n padded (loop or clamp)."""
    if not 0 <= start < n:
        raise ValueError(f"clip start {start} outside a timeline of {n} frames")
    if pad not in _PADS:
        raise ValueError(f"pad must be one of {_PADS}, got {pad!r}")
    valid = n - start
    if pad == "loop":
        return [start + (k % valid) for k in range(num_frames)]
    return [min(start + k, n - 1) for k in range(num_frames)]


def segment_frames(start_sec: float, end_sec: float, src_fps: float, src_num_frames: int) -> tuple[int, int]:
    """Source frame range ``[lo, hi)`` of the segment ``[start_sec, end_sec)`` (at least one frame)."""
    _check(src_fps, 1.0, src_num_frames)
    if end_sec < start_sec:
        raise ValueError(f"segment ends ({end_sec} s) before it starts ({start_sec} s)")
    lo = min(max(source_index(start_sec, src_fps), 0), src_num_frames - 1)
    hi = int(math.ceil(end_sec * src_fps - _EPS))
    hi = min(max(hi, lo + 1), src_num_frames)
    return lo, hi


def strided_positions(start: int, length: int, num_frames: int, rate: int) -> list[int]:
    """Frame positions ``start + rate * k`` (k < ``num_frames``), clamped to [0, length - 1]."""
    return [min(max(start + rate * k, 0), length - 1) for k in range(num_frames)]


# ---------------------------------------------------------------------------------------------------
# clip samplers on the fixed-rate timeline (recognition)


@dataclass(frozen=True)
class RandomClipSampler:
    """One training clip of ``num_frames`` timeline frames at ``fps``: start uniform in
    [0, duration - num_frames / fps] s (:func:`random_start`)."""

    num_frames: int
    fps: float

    def start(self, duration: float, rng: np.random.Generator) -> float:
        return random_start(duration, self.num_frames / self.fps, rng)

    def __call__(self, rng: np.random.Generator, src_fps: float, src_num_frames: int, duration: float) -> list[int]:
        """Source frames of a clip of a whole video (loop-padded past its end)."""
        return timeline_indices(self.start(duration, rng), self.num_frames, self.fps, src_fps, src_num_frames,
                                pad="loop")

    def segment(self, rng: np.random.Generator, src_fps: float, start_sec: float, end_sec: float,
                first: int, end: int) -> list[int]:
        """Source frames of a clip inside the segment [start_sec, end_sec) = source frames [first, end):
        the start is drawn inside the segment and frames are clamped to it."""
        start = start_sec + self.start(end_sec - start_sec, rng)
        return [max(first, j) for j in timeline_indices(start, self.num_frames, self.fps, src_fps, end, pad="clamp")]


@dataclass(frozen=True)
class UniformClipSampler:
    """The ``num_clips`` uniformly spaced test clips of ``num_frames`` frames on a timeline of n frames
    (:func:`test_clip_starts`, padding by :func:`clip_positions`)."""

    num_clips: int
    num_frames: int

    def starts(self, n: int) -> list[int]:
        return test_clip_starts(n, self.num_frames, self.num_clips)

    def __call__(self, n: int, pad: str = "loop") -> list[list[int]]:
        """Timeline positions of every clip."""
        return [clip_positions(s, self.num_frames, n, pad) for s in self.starts(n)]


# ---------------------------------------------------------------------------------------------------
# clip samplers on frame lists (PySlowFast: AVA, Charades)


@dataclass(frozen=True)
class StridedClip:
    """``num_frames`` frame positions ``rate`` apart, clamped to the video (:func:`strided_positions`)."""

    num_frames: int
    rate: int

    @property
    def span(self) -> int:
        """Frames covered by one clip: (num_frames - 1) * rate + 1 (249 for 32 x 8)."""
        return (self.num_frames - 1) * self.rate + 1

    def positions(self, start: int, length: int) -> list[int]:
        return strided_positions(start, length, self.num_frames, self.rate)


@dataclass(frozen=True)
class RandomStridedSampler(StridedClip):
    """Training clip: integer start uniform in [0, L - span], or in [L - span, 0] for a video of L < span
    frames (then clamped positions repeat the first frame)."""

    def start(self, length: int, rng: np.random.Generator) -> int:
        low, high = (0, length - self.span) if length >= self.span else (length - self.span, 0)
        return int(rng.integers(low, high, endpoint=True))

    def __call__(self, length: int, rng: np.random.Generator) -> list[int]:
        return self.positions(self.start(length, rng), length)


@dataclass(frozen=True)
class UniformStridedSampler(StridedClip):
    """``num_clips`` test clips; clip i starts at round(i * max(L - span, 0) / (num_clips - 1))."""

    num_clips: int = 1

    def starts(self, length: int) -> list[int]:
        gap = float(max(length - self.span, 0)) / (self.num_clips - 1) if self.num_clips > 1 else 0.0
        return [int(round(gap * i)) for i in range(self.num_clips)]

    def __call__(self, length: int) -> list[list[int]]:
        return [self.positions(s, length) for s in self.starts(length)]


@dataclass(frozen=True)
class CentredClipSampler(StridedClip):
    """The clip around frame ``centre``: positions centre - num_frames * rate // 2 + rate * k, clamped."""

    def __call__(self, centre: int, length: int) -> list[int]:
        return self.positions(centre - (self.num_frames * self.rate) // 2, length)
