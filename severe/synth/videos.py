"""Procedurally drawn, learnable synthetic videos and their writers (tests and the demo use them).

Every renderer is deterministic given ``seed`` (one ``numpy.random.Generator`` per call) and returns
uint8 RGB arrays ``[T, H, W, 3]``. Appearance (background texture, object colour/texture/shape/size,
start position, phases) is random per seed and never depends on the class; the class is carried only
by **motion**. A motion clip holds :data:`OBJECTS_PER_CLIP` objects that all move as the class does
(from independent random starts and phases), so small random crops still see the class.

Motion classes (:func:`motion_spec`) combine four cues, all chosen to survive horizontal flips (the
training augmentation) and RandomResizedCrop:

* drift direction: up, down, horizontal, diagonal-up, diagonal-down. The horizontal sign is random per
  seed, so a mirrored clip is an equally likely clip of the same class (left/right is never a cue);
* path pattern on top of the drift: straight, zig-zag (perpendicular triangle wave), orbit (circle; its
  rotation sense is random per seed, so it is not a cue), pulse (size oscillation), surge (speed
  oscillating between stop and go); each with a large/small amplitude and a slow/fast period;
* drift speed: four levels (in units of ``min(H, W)`` per frame).

Labels are mixed-radix: ``direction = label % 5`` varies fastest, then the 17 path variants, then speed,
so the first labels (``num_classes <= 12``) differ in direction or path shape at the same medium speed:
0-4 straight up/down/horizontal/diag-up/diag-down, 5-9 the same with a large slow zig-zag, 10-11 large
slow orbits. Capacity: :data:`MOTION_CAPACITY` = 340 classes.

Objects leaving the frame re-enter on the opposite side (toroidal wrap), so the motion is visible in
any temporal window of any clip length, and direction never reverses.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import cv2
import numpy as np
import torch
from torchvision.io import encode_jpeg

from severe.errors import SevereError

__all__ = [
    "MOTION_CAPACITY",
    "OBJECTS_PER_CLIP",
    "ACTION_CAPACITY",
    "MULTILABEL_TIME_STRETCH",
    "MotionSpec",
    "ActionCue",
    "motion_spec",
    "action_cue",
    "render_motion_clip",
    "render_multilabel_clip",
    "render_actors_clip",
    "render_oscillation_clip",
    "write_video",
    "write_frames",
    "video_codec_for",
    "fps_fraction",
]

# ----------------------------------------------------------------------------------------------
# Motion classes
# ----------------------------------------------------------------------------------------------

# direction name -> angle in degrees (counter-clockwise, y pointing up); horizontal sign random per seed
_DIRECTIONS: tuple[tuple[str, float], ...] = (
    ("up", 90.0),
    ("down", -90.0),
    ("horizontal", 0.0),
    ("diag_up", 45.0),
    ("diag_down", -45.0),
)
# (pattern, amplitude, period in frames); ordered from most to least distinct
_PATH_VARIANTS: tuple[tuple[str, float, float], ...] = (
    ("straight", 0.0, 16.0),
    ("zigzag", 0.15, 16.0), ("orbit", 0.15, 16.0), ("pulse", 0.4, 16.0), ("surge", 1.0, 16.0),
    ("zigzag", 0.15, 8.0), ("orbit", 0.15, 8.0), ("pulse", 0.4, 8.0), ("surge", 1.0, 8.0),
    ("zigzag", 0.07, 16.0), ("orbit", 0.07, 16.0), ("pulse", 0.2, 16.0), ("surge", 0.5, 16.0),
    ("zigzag", 0.07, 8.0), ("orbit", 0.07, 8.0), ("pulse", 0.2, 8.0), ("surge", 0.5, 8.0),
)
# drift speed in min(H, W) per frame: medium first so that the first 85 labels share one speed
_SPEEDS: tuple[float, ...] = (0.035, 0.07, 0.018, 0.1)

MOTION_CAPACITY = len(_DIRECTIONS) * len(_PATH_VARIANTS) * len(_SPEEDS)
OBJECTS_PER_CLIP = 3  # objects sharing the class motion in a recognition clip

#: Charades samples 32 frames at stride 8: multi-label motions run 8x slower per frame so that one
#: sampled clip sees the same motion per sampled frame as a motion clip does per frame.
MULTILABEL_TIME_STRETCH = 8.0


@dataclass(frozen=True)
class MotionSpec:
    """The motion that identifies one class (see the module docstring)."""

    direction: str
    angle_deg: float
    pattern: str
    amplitude: float  # zigzag/orbit: fraction of min(H, W); pulse: relative size; surge: depth
    period: float  # frames per oscillation of the pattern
    speed: float  # drift, fraction of min(H, W) per frame


def motion_spec(label: int, num_classes: int) -> MotionSpec:
    """The motion of class ``label`` (0-based) in a dataset of ``num_classes`` classes."""
    _check_label(label, num_classes, MOTION_CAPACITY, "motion")
    nd, nv = len(_DIRECTIONS), len(_PATH_VARIANTS)
    direction, angle = _DIRECTIONS[label % nd]
    pattern, amplitude, period = _PATH_VARIANTS[(label // nd) % nv]
    speed = _SPEEDS[label // (nd * nv)]
    return MotionSpec(direction, angle, pattern, amplitude, period, speed)


def _check_label(label: int, num_classes: int, capacity: int, what: str) -> None:
    if not 1 <= int(num_classes) <= capacity:
        raise SevereError(f"synthetic {what} classes: num_classes={num_classes} must be in [1, {capacity}]")
    if not 0 <= int(label) < int(num_classes):
        raise SevereError(f"synthetic {what} class {label} is outside [0, {num_classes - 1}]")


def _check_size(num_frames: int, height: int, width: int) -> None:
    if num_frames < 1 or height < 8 or width < 8:
        raise SevereError(
            f"synthetic clip size num_frames={num_frames}, height={height}, width={width}: "
            "need at least 1 frame and 8x8 pixels"
        )


# ----------------------------------------------------------------------------------------------
# Appearance (random per seed, never class dependent)
# ----------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 3) -> np.ndarray:
    """Random field in [-1, 1] with about ``cells`` blobs across the longer side (float32 [h, w, c])."""
    ch = max(2, round(cells * h / max(h, w)))
    cw = max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1.0, 1.0, size=(ch, cw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Static textured background (float32 [h, w, 3], 0-255): smooth colour blobs plus fine grain."""
    base = rng.uniform(60.0, 190.0, size=3).astype(np.float32)
    bg = base + 45.0 * _smooth_noise(rng, h, w, int(rng.integers(3, 6)))
    bg += 20.0 * _smooth_noise(rng, h, w, int(rng.integers(10, 20)))
    bg += rng.normal(0.0, 6.0, size=(h, w, 1)).astype(np.float32)
    return np.clip(bg, 0.0, 255.0)


def _contrasting_colour(rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    """A random colour at least ~110 (Euclidean, 0-255) away from ``against``."""
    for _ in range(16):
        colour = rng.uniform(0.0, 255.0, size=3)
        if np.linalg.norm(colour - against) >= 110.0:
            return colour.astype(np.float32)
    return np.where(against > 127.0, 20.0, 235.0).astype(np.float32)


@dataclass
class _Sprite:
    """A textured object: colour patch and boolean shape mask at native size."""

    patch: np.ndarray  # uint8 [h, w, 3]
    mask: np.ndarray  # bool [h, w]

    def scaled(self, scale: float) -> tuple[np.ndarray, np.ndarray]:
        if scale == 1.0:
            return self.patch, self.mask
        h, w = self.mask.shape
        nh, nw = max(2, round(h * scale)), max(2, round(w * scale))
        rows = np.minimum((np.arange(nh) * h / nh).astype(np.intp), h - 1)
        cols = np.minimum((np.arange(nw) * w / nw).astype(np.intp), w - 1)
        return self.patch[rows[:, None], cols[None, :]], self.mask[rows[:, None], cols[None, :]]


def _sprite(rng: np.random.Generator, h: int, w: int, against: np.ndarray) -> _Sprite:
    """Random object: ellipse or rounded box, textured with stripes, checks or blobs."""
    colour = _contrasting_colour(rng, against)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:  # stripes at a random orientation
        theta = rng.uniform(0.0, math.pi)
        period = rng.uniform(3.0, 6.0)
        tex = np.sign(np.sin(2 * math.pi * (xx * math.cos(theta) + yy * math.sin(theta)) / period))
        tex = tex[..., None]
    elif kind == 1:  # checks
        cell = int(rng.integers(2, 5))
        tex = ((yy // cell + xx // cell) % 2 * 2.0 - 1.0)[..., None]
    else:  # blobs
        tex = _smooth_noise(rng, h, w, max(3, max(h, w) // 3), channels=1)
    second = rng.uniform(-1.0, 1.0, size=3).astype(np.float32)
    patch = colour + 45.0 * tex * second / max(1e-3, float(np.abs(second).max()))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    if rng.random() < 0.5:
        mask = ((yy - cy) / (h / 2.0)) ** 2 + ((xx - cx) / (w / 2.0)) ** 2 <= 1.0
    else:  # box with cut corners
        r = max(h, w) * 0.2
        dy = np.maximum(np.abs(yy - cy) - (h / 2.0 - r), 0.0)
        dx = np.maximum(np.abs(xx - cx) - (w / 2.0 - r), 0.0)
        mask = dy * dy + dx * dx <= r * r
    return _Sprite(np.clip(patch, 0, 255).astype(np.uint8), mask)


def _wrapped_runs(start: int, length: int, size: int) -> list[tuple[int, int, int]]:
    """Split [start, start + length) on a circle of ``size`` into (dst_start, src_start, n) runs."""
    runs, src = [], 0
    pos = start % size
    while src < length:
        n = min(length - src, size - pos)
        runs.append((pos, src, n))
        src += n
        pos = 0
    return runs


def _paste_wrapped(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, cy: float, cx: float) -> None:
    """Draw ``patch`` centred at (cy, cx) on a torus (pixels past an edge re-enter opposite)."""
    H, W = frame.shape[:2]
    ph, pw = mask.shape
    for dy, sy, ny in _wrapped_runs(int(round(cy - ph / 2.0)), ph, H):
        for dx, sx, nx in _wrapped_runs(int(round(cx - pw / 2.0)), pw, W):
            np.copyto(frame[dy:dy + ny, dx:dx + nx], patch[sy:sy + ny, sx:sx + nx],
                      where=mask[sy:sy + ny, sx:sx + nx, None])


# ----------------------------------------------------------------------------------------------
# Trajectories
# ----------------------------------------------------------------------------------------------


def _triangle(x: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 in [-1, 1]."""
    return 4.0 * np.abs(x - np.floor(x + 0.5)) - 1.0


@dataclass
class _Track:
    cy: np.ndarray  # float [T] centre row (unwrapped)
    cx: np.ndarray
    scale: np.ndarray  # float [T]


def _trajectory(spec: MotionSpec, t: np.ndarray, unit: float, start: tuple[float, float],
                rng: np.random.Generator) -> _Track:
    """Centre and scale of an object following ``spec`` at (fractional) frame times ``t``."""
    sign = 1.0 if rng.random() < 0.5 else -1.0  # horizontal mirror: never a cue
    phase = rng.uniform(0.0, 1.0)
    a = math.radians(spec.angle_deg)
    d = np.array([-math.sin(a), sign * math.cos(a)])  # (row, col); rows grow downwards
    perp = np.array([d[1], -d[0]])
    w = 2.0 * math.pi * (t / spec.period + phase)
    v = spec.speed * unit
    progress = v * t
    offset = np.zeros((len(t), 2))
    scale = np.ones(len(t))
    amp = spec.amplitude * unit
    if spec.pattern == "zigzag":
        offset = amp * _triangle(t / spec.period + phase)[:, None] * perp
    elif spec.pattern == "orbit":
        sense = 1.0 if rng.random() < 0.5 else -1.0  # rotation sense flips with a mirror: not a cue
        offset = amp * (np.cos(sense * w)[:, None] * d + np.sin(sense * w)[:, None] * perp)
    elif spec.pattern == "pulse":
        scale = 1.0 + spec.amplitude * np.sin(w)
    elif spec.pattern == "surge":  # speed v * (1 - depth * cos(w)) >= 0
        progress = v * (t - spec.amplitude * spec.period / (2 * math.pi) * (np.sin(w) - math.sin(2 * math.pi * phase)))
    pos = np.asarray(start)[None, :] + progress[:, None] * d + offset
    return _Track(pos[:, 0], pos[:, 1], scale)


def _draw_track(frames: np.ndarray, sprite: _Sprite, track: _Track, frame_ids: np.ndarray) -> None:
    for i, f in enumerate(frame_ids):
        patch, mask = sprite.scaled(float(track.scale[i]))
        _paste_wrapped(frames[f], patch, mask, float(track.cy[i]), float(track.cx[i]))


def _object_size(rng: np.random.Generator, height: int, width: int) -> tuple[int, int]:
    unit = min(height, width)
    h = max(4, round(unit * rng.uniform(0.2, 0.3)))
    w = max(4, round(h * rng.uniform(0.75, 1.35)))
    return h, min(w, width - 2)


def _moving_object(frames: np.ndarray, bg_mean: np.ndarray, spec: MotionSpec, frame_ids: np.ndarray,
                   time_stretch: float, rng: np.random.Generator) -> None:
    """Add one object following ``spec`` to ``frames[frame_ids]`` (appearance random)."""
    _, H, W, _ = frames.shape
    oh, ow = _object_size(rng, H, W)
    sprite = _sprite(rng, oh, ow, bg_mean)
    start = (rng.uniform(0.0, H), rng.uniform(0.0, W))
    t = frame_ids.astype(np.float64) / time_stretch
    _draw_track(frames, sprite, _trajectory(spec, t, float(min(H, W)), start, rng), frame_ids)


def _canvas(rng: np.random.Generator, num_frames: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    bg = _background(rng, height, width)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    frames[:] = bg.astype(np.uint8)
    return frames, bg.reshape(-1, 3).mean(axis=0)


# ----------------------------------------------------------------------------------------------
# Public renderers
# ----------------------------------------------------------------------------------------------


def render_motion_clip(label: int, num_classes: int, *, num_frames: int, height: int, width: int,
                       seed: int) -> np.ndarray:
    """:data:`OBJECTS_PER_CLIP` textured objects on a textured background, each moving as class ``label``
    does from its own random start (uint8 [T, H, W, 3]); several objects keep the class visible in most
    random crops."""
    spec = motion_spec(label, num_classes)
    _check_size(num_frames, height, width)
    rng = np.random.default_rng(seed)
    frames, bg_mean = _canvas(rng, num_frames, height, width)
    for _ in range(OBJECTS_PER_CLIP):
        _moving_object(frames, bg_mean, spec, np.arange(num_frames), 1.0, rng)
    return frames


def render_multilabel_clip(segments: Sequence[tuple[int, int, int]], num_classes: int, *, num_frames: int,
                           height: int, width: int, seed: int) -> np.ndarray:
    """Charades-like clip: each (class, start_frame, end_frame_inclusive) adds an object visible only in
    that range (0-based, clipped to the clip) moving as the class does, at 1/:data:`MULTILABEL_TIME_STRETCH`
    of the per-frame speed of :func:`render_motion_clip`. Segments may overlap."""
    _check_size(num_frames, height, width)
    specs = []
    for seg in segments:
        if len(seg) != 3:
            raise SevereError(f"synthetic multi-label segment {seg!r}: expected (class, start_frame, end_frame)")
        cls, start, end = (int(v) for v in seg)
        if end < start:
            raise SevereError(f"synthetic multi-label segment {seg!r}: end_frame < start_frame")
        specs.append((motion_spec(cls, num_classes), start, end))
    rng = np.random.default_rng(seed)
    frames, bg_mean = _canvas(rng, num_frames, height, width)
    for spec, start, end in specs:
        obj_rng = np.random.default_rng(rng.integers(2**63))  # same object whatever its range
        ids = np.arange(max(start, 0), min(end, num_frames - 1) + 1)
        if len(ids):
            _moving_object(frames, bg_mean, spec, ids, MULTILABEL_TIME_STRETCH, obj_rng)
    return frames


# ---- actors (AVA-like) -------------------------------------------------------------------------

_ACTION_KINDS: tuple[str, ...] = ("bars_up", "bars_down", "bars_side", "bars_diag", "checker_flip")
_ACTION_PERIODS: tuple[float, ...] = (8.0, 14.0, 6.0, 20.0)  # frames per temporal cycle
_ACTION_SCALES: tuple[float, ...] = (0.12, 0.08, 0.18, 0.06, 0.24)  # spatial period, fraction of min(H, W)
ACTION_CAPACITY = len(_ACTION_KINDS) * len(_ACTION_PERIODS) * len(_ACTION_SCALES)


@dataclass(frozen=True)
class ActionCue:
    """In-box pattern of one action: moving bars or a contrast-reversing checkerboard."""

    kind: str
    period: float  # frames for the pattern to move one spatial period / reverse twice
    scale: float  # spatial period as a fraction of min(H, W)


def action_cue(action: int, num_action_classes: int) -> ActionCue:
    """The in-box cue of action id ``action`` (0-based): kind varies fastest, then period, then scale.

    Periods are at least 6 frames so they survive AVA's stride-2 sampling; sideways and diagonal bars
    move with a sign random per actor (flip-invariant)."""
    _check_label(action, num_action_classes, ACTION_CAPACITY, "action")
    nk, np_ = len(_ACTION_KINDS), len(_ACTION_PERIODS)
    return ActionCue(_ACTION_KINDS[action % nk], _ACTION_PERIODS[(action // nk) % np_],
                     _ACTION_SCALES[action // (nk * np_)])


def _cue_pattern(cue: ActionCue, yy: np.ndarray, xx: np.ndarray, t: np.ndarray, unit: float,
                 sign: float, phase: float) -> np.ndarray:
    """Binary pattern (bool [T, h, w], possibly broadcast) of ``cue`` at frames ``t``.

    ``yy`` is a column [h, 1] and ``xx`` a row [1, w] of box-local coordinates."""
    lam = max(3.0, cue.scale * unit)
    shift = (t / cue.period + phase)[:, None, None]
    if cue.kind == "checker_flip":
        cell = lam / 2.0
        checks = ((np.floor(yy / cell) + np.floor(xx / cell)) % 2).astype(bool)
        return checks[None] ^ (np.floor(2.0 * shift) % 2).astype(bool)
    coord = {
        "bars_up": yy,
        "bars_down": -yy,
        "bars_side": sign * xx,
        "bars_diag": (sign * xx + yy) / math.sqrt(2.0),
    }[cue.kind]
    return (np.floor(2.0 * (coord[None] / lam + shift)) % 2).astype(bool)


def _actor_paths(rng: np.random.Generator, n: int, T: int, H: int, W: int) -> np.ndarray:
    """Integer box corners [T, n, 4] (x1, y1, x2, y2 exclusive) moving slowly, inside the frame."""
    boxes = np.zeros((T, n, 4), dtype=np.int64)
    t = np.arange(T, dtype=np.float64)
    slot = W / n
    for i in range(n):
        bw = max(4, min(round(W * rng.uniform(0.16, 0.26)), int(slot) + 2, W - 2))
        bh = max(6, min(round(H * rng.uniform(0.4, 0.65)), H - 2))
        cx0 = slot * (i + rng.uniform(0.3, 0.7))
        cy0 = rng.uniform(bh / 2.0, H - bh / 2.0)
        cx, cy = np.full(T, cx0), np.full(T, cy0)
        for axis_len, c in ((W, cx), (H, cy)):
            for _ in range(2):  # two slow sinusoids per axis
                period = rng.uniform(60.0, 200.0)
                c += rng.uniform(0.02, 0.06) * axis_len * np.sin(2 * math.pi * (t / period + rng.uniform()))
        x1 = np.clip(np.round(cx - bw / 2.0), 0, W - bw).astype(np.int64)
        y1 = np.clip(np.round(cy - bh / 2.0), 0, H - bh).astype(np.int64)
        boxes[:, i] = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)
    return boxes


def render_actors_clip(actor_actions: Sequence[Sequence[int]], num_action_classes: int, *, num_frames: int,
                       height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """AVA-like clip: one slowly moving box-shaped actor per entry of ``actor_actions``.

    Actors move slowly (two slow sinusoids per axis) and stay inside the frame. The box of an actor
    with k actions is split into k horizontal bands, one per action (sorted ids), each showing that
    action's moving pattern (:func:`action_cue`) in the actor's two random colours; an actor without
    actions shows a static texture. The background depends only on (seed, height, width): with
    ``actor_actions=[]`` the clip is the bare background. Returns (frames uint8 [T, H, W, 3], boxes float32 [T, A, 4]
    normalised x1, y1, x2, y2 that exactly enclose each drawn actor). Later actors are drawn on top."""
    _check_size(num_frames, height, width)
    actions = [sorted({int(a) for a in acts}) for acts in actor_actions]
    cues = [[action_cue(a, num_action_classes) for a in acts] for acts in actions]
    rng = np.random.default_rng(seed)
    frames, bg_mean = _canvas(rng, num_frames, height, width)
    n = len(actions)
    if n == 0:
        return frames, np.zeros((num_frames, 0, 4), dtype=np.float32)
    boxes = _actor_paths(rng, n, num_frames, height, width)
    t = np.arange(num_frames, dtype=np.float64)
    unit = float(min(height, width))
    for i, actor_cues in enumerate(cues):
        x1, y1, x2, y2 = boxes[0, i]
        bh, bw = int(y2 - y1), int(x2 - x1)
        look = np.empty((num_frames, bh, bw, 3), dtype=np.uint8)
        if actor_cues:  # two-colour bands: "off" colour against the background, "on" against "off"
            off = _contrasting_colour(rng, bg_mean)
            other = _contrasting_colour(rng, off).astype(np.uint8)
            look[:] = off.astype(np.uint8)
        else:  # no action: a static textured body
            look[:] = _sprite(rng, bh, bw, bg_mean).patch
        yy = np.arange(bh, dtype=np.float64)[:, None]
        xx = np.arange(bw, dtype=np.float64)[None, :]
        bands = np.linspace(0, bh, len(actor_cues) + 1).round().astype(int)
        for k, cue in enumerate(actor_cues):
            r0, r1 = bands[k], bands[k + 1]
            sign = 1.0 if rng.random() < 0.5 else -1.0
            on = _cue_pattern(cue, yy[r0:r1], xx, t, unit, sign, rng.uniform())
            on = np.broadcast_to(on, (num_frames, r1 - r0, bw))
            np.copyto(look[:, r0:r1], other, where=on[..., None])
        for f in range(num_frames):
            bx1, by1 = boxes[f, i, :2]
            frames[f, by1:by1 + bh, bx1:bx1 + bw] = look[f]
    scale = np.array([width, height, width, height], dtype=np.float64)
    return frames, (boxes / scale).astype(np.float32)


# ---- repetition (UCFRep-like) ------------------------------------------------------------------


def render_oscillation_clip(boundaries: Sequence[int], *, num_frames: int, height: int, width: int,
                            seed: int) -> np.ndarray:
    """An object rising and falling back exactly once between consecutive ``boundaries``.

    ``boundaries`` are strictly increasing 0-based frame indices in [0, num_frames - 1], at least two,
    consecutive ones at least 2 frames apart. At each boundary the object is at its lowest (rest)
    position and it is highest half-way through each cycle; before the first and after the last
    boundary it rests. Count of cycles = len(boundaries) - 1."""
    _check_size(num_frames, height, width)
    b = np.asarray([int(v) for v in boundaries], dtype=np.int64)
    if len(b) < 2:
        raise SevereError(f"oscillation boundaries {list(b)}: need at least two (one cycle)")
    if b[0] < 0 or b[-1] > num_frames - 1:
        raise SevereError(f"oscillation boundaries {list(b)}: must lie in [0, {num_frames - 1}]")
    if np.any(np.diff(b) < 2):
        raise SevereError(f"oscillation boundaries {list(b)}: must increase by at least 2 frames")
    rng = np.random.default_rng(seed)
    frames, bg_mean = _canvas(rng, num_frames, height, width)
    oh, ow = _object_size(rng, height, width)
    sprite = _sprite(rng, oh, ow, bg_mean)
    t = np.arange(num_frames, dtype=np.float64)
    cycle_phase = np.interp(t, b.astype(np.float64), np.arange(len(b), dtype=np.float64))  # flat outside
    lift = 0.5 * (1.0 - np.cos(2.0 * math.pi * cycle_phase))  # 0 at boundaries, 1 mid-cycle
    margin = 1.0
    rest = height - margin - oh / 2.0
    amp = (rest - (margin + oh / 2.0)) * rng.uniform(0.6, 1.0)
    cx = rng.uniform(ow / 2.0 + margin, width - ow / 2.0 - margin)
    for f in range(num_frames):
        _paste_wrapped(frames[f], sprite.patch, sprite.mask, rest - amp * lift[f], cx)
    return frames


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------

# extension -> (container format, codec candidates in order of preference, encoder options). One encoder
# thread and no wall-clock-driven mode (libvpx "realtime" adapts to the time taken), so the same frames give
# the same bytes on a loaded machine too. x264's macroblock-tree rate control (mbtree) is off: with it, the
# x264 in PyAV's wheels gave 2-4 different byte streams for the same frames over 20 encodes in one process
# (single thread); without it every encode was identical. Containers are muxed with ``fflags=+bitexact``
# (no random Matroska segment UID, no muxer version string). tests/synth/test_synth_videos.py checks both.
_VIDEO_FORMATS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    ".avi": ("avi", ("mpeg4",), {"flags": "+qscale", "global_quality": str(3 * 118), "threads": "1"}),  # -q:v 3
    ".mp4": ("mp4", ("libx264", "mpeg4"), {"crf": "18", "preset": "veryfast", "threads": "1",
                                                  "x264-params": "threads=1:lookahead-threads=1:mbtree=0"}),
    ".webm": ("webm", ("libvpx-vp9", "libvpx"), {"crf": "20", "b": "0", "deadline": "good", "cpu-used": "8",
                                                  "threads": "1"}),
}


def _available(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several types for unknown codecs
        return False
    return True


def video_codec_for(path: Path | str) -> tuple[str, str]:
    """(container format, encoder) used for ``path`` by its extension (case-insensitive)."""
    ext = Path(path).suffix.lower()
    if ext not in _VIDEO_FORMATS:
        raise SevereError(f"{path}: unsupported video extension {ext!r}; use one of {sorted(_VIDEO_FORMATS)}")
    fmt, candidates, _ = _VIDEO_FORMATS[ext]
    for codec in candidates:
        if _available(codec):
            return fmt, codec
    raise SevereError(f"{path}: none of the encoders {candidates} is available in PyAV's FFmpeg")


def fps_fraction(fps: float) -> Fraction:
    """Exact frame rate: integers stay integers, NTSC rates (29.97, 23.976, 59.94) become N*1000/1001."""
    if not fps > 0 or not math.isfinite(fps):
        raise SevereError(f"frame rate {fps!r} must be a positive number")
    if abs(fps - round(fps)) < 1e-9:
        return Fraction(round(fps))
    ntsc = round(fps * 1.001)
    if abs(fps - ntsc / 1.001) < 5e-3 and ntsc % 6 == 0:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(fps).limit_denominator(1000)


def _check_frames(frames: np.ndarray, where: object) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", None)
        raise SevereError(f"{where}: frames must be uint8 [T, H, W, 3], got {dtype} {shape}")
    if frames.shape[0] < 1:
        raise SevereError(f"{where}: no frames to write")


def write_video(path: Path, frames: np.ndarray, fps: float, *, gop_size: int | None = None) -> None:
    """Encode RGB ``frames`` (uint8 [T, H, W, 3], even H and W) to ``path`` atomically.

    Codec by extension (:data:`_VIDEO_FORMATS`): ``.avi`` MPEG-4 part 2 (XVID tag, as UCF101 ships),
    ``.mp4`` H.264 (libx264; mpeg4 if absent), ``.webm`` VP9 (VP8 if absent); yuv420p; every frame kept;
    ``fps`` stored exactly (:func:`fps_fraction`). ``gop_size`` defaults to one keyframe per second."""
    path = Path(path)
    _check_frames(frames, path)
    T, H, W, _ = frames.shape
    if H % 2 or W % 2:
        raise SevereError(f"{path}: frame size {W}x{H} must be even in both dimensions for yuv420p")
    fmt, codec = video_codec_for(path)
    options = dict(_VIDEO_FORMATS[path.suffix.lower()][2])
    if codec == "mpeg4" and fmt != "avi":
        options = dict(_VIDEO_FORMATS[".avi"][2])
    rate = fps_fraction(fps)
    gop = max(1, round(float(rate))) if gop_size is None else int(gop_size)
    if gop < 1:
        raise SevereError(f"{path}: gop_size={gop_size} must be >= 1")

    def encode(tmp: str) -> None:
        with av.open(tmp, mode="w", format=fmt, options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream(codec, rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            stream.codec_context.gop_size = gop
            stream.codec_context.thread_count = 1  # deterministic bytes (frame-threaded encoders vary with load)
            if codec == "mpeg4" and fmt == "avi":
                stream.codec_context.codec_tag = "XVID"
            time_base = 1 / rate
            for i in range(T):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                frame.pts, frame.time_base = i, time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))

    _atomic(path, encode)


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """Run ``write(tmp_name)`` on a temp file next to ``path`` (same extension), then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_frames(folder: Path, frames: np.ndarray, pattern: str, start: int = 1, quality: int = 90) -> None:
    """Write each frame as a JPEG ``folder / pattern.format(i)``, i = start, start + 1, ...

    Encoded with ``torchvision.io.encode_jpeg`` (measured faster than PIL: 23 vs 125 us per 64x48 frame,
    0.53 vs 0.68 ms at 320x240). Each file goes through a temp name + rename, so no half-written JPEG
    ever has a final name."""
    folder = Path(folder)
    _check_frames(frames, folder)
    if not 1 <= int(quality) <= 100:
        raise SevereError(f"{folder}: JPEG quality {quality} must be in [1, 100]")
    try:
        names = [pattern.format(start + i) for i in range(frames.shape[0])]
    except (IndexError, KeyError, ValueError) as exc:
        raise SevereError(f"frame name pattern {pattern!r} must take one integer, e.g. 'image_{{:05d}}.jpg'") from exc
    if len(set(names)) != len(names) or any(os.sep in n for n in names):
        raise SevereError(f"frame name pattern {pattern!r} must give distinct file names (no folders)")
    folder.mkdir(parents=True, exist_ok=True)
    chw = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    for image, name in zip(chw, names):
        with warnings.catch_warnings():  # torchvision 0.29 (pinned) flags its image codecs as deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            data = encode_jpeg(image, quality=int(quality)).numpy().tobytes()
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
