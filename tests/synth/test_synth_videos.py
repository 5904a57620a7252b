"""Synthetic videos: determinism, learnability from motion (not appearance), geometry, writers."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from severe.errors import SevereError
from severe.synth import videos as V

T, H, W = 16, 48, 64


# ---- determinism, shapes, class table ---------------------------------------------------------


RENDERERS = {
    "motion": lambda seed: V.render_motion_clip(3, 10, num_frames=T, height=H, width=W, seed=seed),
    "multilabel": lambda seed: V.render_multilabel_clip([(0, 0, 9), (7, 4, 15)], 10, num_frames=T, height=H,
                                                        width=W, seed=seed),
    "actors": lambda seed: V.render_actors_clip([[0], [1, 5]], 80, num_frames=T, height=H, width=W,
                                                seed=seed)[0],
    "oscillation": lambda seed: V.render_oscillation_clip([1, 6, 14], num_frames=T, height=H, width=W, seed=seed),
}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_renderers_deterministic_shape_dtype(name):
    render = RENDERERS[name]
    a, b, c = render(7), render(7), render(8)
    assert a.shape == (T, H, W, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 50  # textured, not flat


def test_actor_boxes_shape_and_determinism():
    f1, b1 = V.render_actors_clip([[0], [1, 5], []], 80, num_frames=T, height=H, width=W, seed=3)
    f2, b2 = V.render_actors_clip([[0], [1, 5], []], 80, num_frames=T, height=H, width=W, seed=3)
    assert b1.shape == (T, 3, 4) and b1.dtype == np.float32
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_array_equal(f1, f2)
    assert (b1 >= 0).all() and (b1 <= 1).all()
    assert (b1[..., 2] > b1[..., 0]).all() and (b1[..., 3] > b1[..., 1]).all()


def test_motion_table_first_labels_and_capacity():
    specs = [V.motion_spec(i, V.MOTION_CAPACITY) for i in range(V.MOTION_CAPACITY)]
    assert V.MOTION_CAPACITY == 340 and len(set(specs)) == 340  # every class has its own motion
    first = [(s.direction, s.pattern) for s in specs[:12]]
    assert len(set(first)) == 12 and {s.speed for s in specs[:12]} == {0.035}
    assert first[:5] == [("up", "straight"), ("down", "straight"), ("horizontal", "straight"),
                         ("diag_up", "straight"), ("diag_down", "straight")]
    assert first[5] == ("up", "zigzag") and first[10] == ("up", "orbit")
    assert V.motion_spec(7, 12) == specs[7]  # independent of num_classes
    cues = {V.action_cue(i, V.ACTION_CAPACITY) for i in range(V.ACTION_CAPACITY)}
    assert V.ACTION_CAPACITY == 100 and len(cues) == 100
    assert [V.action_cue(i, 80).kind for i in range(5)] == list(V._ACTION_KINDS)


@pytest.mark.parametrize("call", [
    lambda: V.render_motion_clip(4, 4, num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_motion_clip(-1, 4, num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_motion_clip(0, 341, num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_motion_clip(0, 4, num_frames=0, height=H, width=W, seed=0),
    lambda: V.render_multilabel_clip([(0, 5, 2)], 4, num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_multilabel_clip([(9, 0, 2)], 4, num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_actors_clip([[80]], 80, num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_oscillation_clip([3], num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_oscillation_clip([3, 4], num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_oscillation_clip([3, 16], num_frames=T, height=H, width=W, seed=0),
    lambda: V.render_oscillation_clip([5, 3], num_frames=T, height=H, width=W, seed=0),
])
def test_bad_arguments_raise(call):
    with pytest.raises(SevereError):
        call()


# ---- learnable from motion, not from a frame --------------------------------------------------


def _shifts(clip: np.ndarray, lag: int = 3) -> np.ndarray:
    """Global displacement (rows, cols) of the |frame difference| map over ``lag`` frames, one per
    start frame, [T-1-lag, 2]: argmax of the circular cross-correlation (objects wrap around the
    edges, so np.roll-style shifts are exact). All objects of a motion clip share one velocity."""
    d = np.abs(np.diff(clip.astype(np.int16), axis=0)).sum(-1).astype(np.float64)
    d -= d.mean((1, 2), keepdims=True)
    f = np.fft.rfft2(d)
    corr = np.fft.irfft2(f[lag:] * np.conj(f[:-lag]), s=d.shape[1:])
    idx = corr.reshape(len(corr), -1).argmax(1)
    rows, cols = np.unravel_index(idx, d.shape[1:])
    size = np.array(d.shape[1:])
    return (np.stack([rows, cols], 1) + size // 2) % size - size // 2


def _motion_features(clip: np.ndarray) -> np.ndarray:
    step = _shifts(clip)
    return np.array([np.median(step[:, 0]), np.median(np.abs(step[:, 1]))])


def _frame_features(clip: np.ndarray) -> np.ndarray:
    small = clip[0].reshape(6, 8, 8, 8, 3).mean((1, 3))  # 6x8 colour thumbnail of frame 0
    return small.ravel()


def _nearest_centroid_accuracy(train, test) -> float:
    cents = np.stack([np.mean(v, 0) for v in train])
    scale = np.concatenate(train).std(0) + 1e-9
    hits = [np.argmin((((x - cents) / scale) ** 2).sum(1)) == c for c, xs in enumerate(test) for x in xs]
    return float(np.mean(hits))


def test_classes_separable_from_motion_not_from_a_frame():
    n_cls, seeds = 4, 16
    clips = [[V.render_motion_clip(c, n_cls, num_frames=T, height=H, width=W, seed=1000 * c + s)
              for s in range(2 * seeds)] for c in range(n_cls)]
    motion = [[_motion_features(x) for x in cl] for cl in clips]
    frame = [[_frame_features(x) for x in cl] for cl in clips]
    acc_motion = _nearest_centroid_accuracy([m[:seeds] for m in motion], [m[seeds:] for m in motion])
    acc_frame = _nearest_centroid_accuracy([f[:seeds] for f in frame], [f[seeds:] for f in frame])
    assert acc_motion >= 0.95, acc_motion
    assert acc_frame <= 0.45, acc_frame  # chance is 0.25
    # up moves up, down moves down (rows grow downwards), horizontal has no vertical drift
    dy = [np.median([m[0] for m in motion[c]]) for c in range(3)]
    assert dy[0] < -0.8 and dy[1] > 0.8 and abs(dy[2]) < 0.3


def test_horizontal_sign_is_random_per_seed():
    """Left/right is never a class cue: a horizontal flip maps a clip onto a clip of the same class."""
    signs = []
    for seed in range(12):
        clip = V.render_motion_clip(2, 4, num_frames=T, height=H, width=W, seed=seed)
        signs.append(np.sign(np.median(_shifts(clip)[:, 1])))
    assert 1.0 in signs and -1.0 in signs


def test_speed_levels_differ():
    """Label 85 = label 0 (up) at double speed: 0.035 vs 0.07 of min(H, W) per frame."""
    def drift(label):
        return np.median([_motion_features(V.render_motion_clip(label, 340, num_frames=T, height=H,
                                                                width=W, seed=s))[0] for s in range(6)])
    unit = min(H, W) * 3  # lag of 3 frames
    assert drift(0) == pytest.approx(-0.035 * unit, abs=1.0)
    assert drift(85) == pytest.approx(-0.07 * unit, abs=1.0)


def test_path_patterns():
    """Trajectories of the path variants, checked exactly on the generator."""
    t = np.arange(64, dtype=np.float64)
    unit = 100.0

    def track(label, seed=0):
        return V._trajectory(V.motion_spec(label, 340), t, unit, (50.0, 50.0), np.random.default_rng(seed))

    straight = track(0)  # up at 3.5 px/frame, no sideways motion, constant size
    np.testing.assert_allclose(np.diff(straight.cy), -3.5)
    np.testing.assert_allclose(straight.cx, 50.0, atol=1e-9)
    assert (straight.scale == 1).all()
    zig = track(5)  # up with a perpendicular triangle wave: amplitude 15 px, period 16 frames
    fine = V._trajectory(V.motion_spec(5, 340), np.arange(0, 32, 1 / 64), unit, (50.0, 50.0),
                         np.random.default_rng(0))
    assert np.ptp(fine.cx) == pytest.approx(30.0, abs=0.1)
    np.testing.assert_allclose(zig.cx[16:], zig.cx[:-16], atol=1e-9)
    assert np.median(np.abs(np.diff(zig.cx))) == pytest.approx(30.0 / 8)  # 30 px in half a period
    np.testing.assert_allclose(np.diff(zig.cy), -3.5)
    orbit = track(10)  # circle of radius 15 px around a centre drifting up
    centre = np.stack([orbit.cy + 3.5 * t - 50.0, orbit.cx - 50.0], 1)
    np.testing.assert_allclose(np.hypot(*centre.T), 15.0, atol=1e-9)
    pulse = track(15)  # size oscillates 0.6 .. 1.4
    assert pulse.scale.min() == pytest.approx(0.6, abs=0.02) and pulse.scale.max() == pytest.approx(1.4, abs=0.02)
    surge = track(20)  # stop-and-go: speed from 0 to 7 px/frame, average 3.5
    speed = -np.diff(surge.cy)
    assert speed.min() >= -1e-9 and speed.min() < 0.2 and speed.max() > 6.5
    assert (surge.cy[0] - surge.cy[16]) == pytest.approx(56.0)
    # a horizontal class moves left for some seeds and right for others, at the same speed
    xs = [np.diff(track(2, seed).cx)[0] for seed in range(8)]
    assert set(np.round(xs, 6)) == {-3.5, 3.5}


# ---- multi-label -----------------------------------------------------------------------------


def test_multilabel_objects_visible_only_in_their_range():
    n = 40
    bg = V.render_multilabel_clip([], 10, num_frames=n, height=H, width=W, seed=5)
    assert (bg == bg[0]).all()  # no segment: bare static background
    clip = V.render_multilabel_clip([(0, 5, 14), (1, 10, 29)], 10, num_frames=n, height=H, width=W, seed=5)
    changed = (clip != bg).any(-1).sum((1, 2))
    assert (changed[:5] == 0).all() and (changed[30:] == 0).all()
    assert (changed[5:30] > 20).all()
    # the second object joins the first one from frame 10 on (co-occurring segments)
    one = V.render_multilabel_clip([(0, 5, 14)], 10, num_frames=n, height=H, width=W, seed=5)
    assert (one != bg).any(-1).sum((1, 2))[15:].max() == 0
    assert (one[:10] == clip[:10]).all()
    assert all((one[t] != clip[t]).any() and (one[t] != bg[t]).any() for t in range(10, 15))


def test_multilabel_motion_is_stretched_in_time():
    """Class 0 (up) moves up by about one motion-clip step per MULTILABEL_TIME_STRETCH frames."""
    stretch = int(V.MULTILABEL_TIME_STRETCH)
    ups, downs = [], []
    for seed in range(4):
        for cls, out in ((0, ups), (1, downs)):
            clip = V.render_multilabel_clip([(cls, 0, 16 * stretch - 1)], 4, num_frames=16 * stretch,
                                            height=H, width=W, seed=seed)
            out.append(_motion_features(clip[::stretch])[0])
    per_lag = 0.035 * min(H, W) * 3  # _shifts uses a lag of 3 sampled frames
    assert np.median(ups) == pytest.approx(-per_lag, abs=1.0)
    assert np.median(downs) == pytest.approx(per_lag, abs=1.0)


# ---- actors ----------------------------------------------------------------------------------


def test_actor_boxes_tightly_cover_the_actors():
    acts = [[0], [1, 2], [], [3, 4, 7]]
    bg = V.render_actors_clip([], 80, num_frames=T, height=H, width=W, seed=11)[0]
    clip, boxes = V.render_actors_clip(acts, 80, num_frames=T, height=H, width=W, seed=11)
    assert (bg == bg[0]).all()
    px = np.round(boxes * np.array([W, H, W, H])).astype(int)
    np.testing.assert_allclose(px / np.array([W, H, W, H]), boxes, atol=1e-6)  # whole pixels
    differs = (clip != bg).any(-1)
    for t in range(T):
        inside = np.zeros((H, W), bool)
        for a in reversed(range(len(acts))):  # later actors are drawn on top
            x1, y1, x2, y2 = px[t, a]
            own = np.zeros((H, W), bool)
            own[y1:y2, x1:x2] = True
            visible = own & ~inside
            assert differs[t][visible].mean() > 0.85
            inside |= own
        assert not differs[t][~inside].any()  # nothing drawn outside the boxes
    # tight: first/last row and column of every unoccluded box hold actor pixels
    x1, y1, x2, y2 = px[0, -1]
    for edge in (differs[0, y1, x1:x2], differs[0, y2 - 1, x1:x2], differs[0, y1:y2, x1], differs[0, y1:y2, x2 - 1]):
        assert edge.mean() > 0.5
    # actors move, slowly
    travel = np.abs(np.diff(px, axis=0)).max()
    assert np.abs(px[-1] - px[0]).max() > 0 and travel <= 2


def _band_on_mask(action: int, seed: int, h: int = 100, w: int = 128, n: int = 12):
    clip, boxes = V.render_actors_clip([[action]], 80, num_frames=n, height=h, width=w, seed=seed)
    px = np.round(boxes * np.array([w, h, w, h])).astype(int)
    crops = np.stack([clip[t, y1:y2, x1:x2] for t, (x1, y1, x2, y2) in enumerate(px[:, 0])])
    colours = np.unique(crops.reshape(-1, 3), axis=0)
    assert len(colours) == 2  # two-colour band
    return (crops == colours[0]).all(-1)


@pytest.mark.parametrize("seed", [0, 1])
def test_action_cues_move_as_specified(seed):
    """Unit 100 px: spatial period 12 px, temporal period 8 frames -> bars move 3 px per 2 frames."""
    up, down = _band_on_mask(0, seed), _band_on_mask(1, seed)
    for t in range(8):
        np.testing.assert_array_equal(up[t + 2][:-3], up[t][3:])  # content moves up
        np.testing.assert_array_equal(down[t + 2][3:], down[t][:-3])  # content moves down
    side = _band_on_mask(2, seed)
    assert (np.array_equal(side[4][:, :-3], side[2][:, 3:]) or np.array_equal(side[4][:, 3:], side[2][:, :-3]))
    flip = _band_on_mask(4, seed)  # contrast reversal every half period (4 frames)
    changes = [np.array_equal(flip[t + 1], ~flip[t]) for t in range(11)]
    assert sum(changes) in (2, 3) and all(np.array_equal(flip[t + 1], flip[t]) for t in range(11) if not changes[t])


# ---- oscillation -----------------------------------------------------------------------------


def _object_top(clip: np.ndarray) -> np.ndarray:
    """Height of the object's top edge above its rest position (frame 0 is at rest)."""
    changed = (clip != clip[0]).any(-1).any(-1)  # [T, H] rows with any change
    heights = np.zeros(len(clip))
    rows = [np.flatnonzero(c) for c in changed]
    lowest = max(r.max() for r in rows if len(r))  # bottom of the vacated rest area
    for t, r in enumerate(rows):
        heights[t] = 0 if len(r) == 0 else lowest - r.min()
    return heights


@pytest.mark.parametrize("boundaries,n,seed", [
    ([3, 11, 20, 26, 40], 44, 0),
    ([0, 2, 9, 30, 33], 34, 1),
    ([5, 21], 30, 2),
    ([1, 6, 11, 16, 21, 26, 31, 36], 40, 3),
])
def test_oscillation_cycle_count(boundaries, n, seed):
    clip = V.render_oscillation_clip(boundaries, num_frames=n, height=H, width=W, seed=seed)
    h = _object_top(clip)
    assert (h[: boundaries[0] + 1] == 0).all() and (h[boundaries[-1]:] == 0).all()  # rests outside
    assert all(h[b] == 0 for b in boundaries)  # back at rest at each boundary
    peaks = [t for t in range(1, n - 1) if h[t] > h[t - 1] and h[t] >= h[t + 1] and h[t] > 0.5 * h.max()]
    assert len(peaks) == len(boundaries) - 1
    mids = [(a + b) / 2 for a, b in zip(boundaries[:-1], boundaries[1:])]
    assert all(abs(p - m) <= 1 for p, m in zip(peaks, mids))


# ---- writers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name,fps,rate,codec", [
    ("clip.avi", 25, Fraction(25), "mpeg4"),
    ("sub/dir/clip.mp4", 29.97, Fraction(30000, 1001), "h264"),
    ("clip.MP4", 12, Fraction(12), "h264"),
    ("clip.webm", 16, Fraction(16), "vp9"),
    ("clip.avi", 59.94, Fraction(60000, 1001), "mpeg4"),
])
def test_write_video_roundtrip(tmp_path, name, fps, rate, codec):
    frames = V.render_motion_clip(1, 4, num_frames=21, height=H, width=W, seed=4)
    frames[3] = [255, 0, 0]  # a solid red frame: checks RGB order
    path = tmp_path / name
    V.write_video(path, frames, fps)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        assert stream.average_rate == rate
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    assert decoded.shape == frames.shape
    assert decoded[3, ..., 0].min() > 200 and decoded[3, ..., 1:].max() < 60
    assert np.abs(decoded.astype(int) - frames).mean() < 12


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".webm"])
def test_write_video_same_frames_same_bytes(tmp_path, suffix):
    """Encoding is a pure function of the frames (WebM used to carry a random segment UID)."""
    frames = np.concatenate([V.render_motion_clip(i % 5, 5, num_frames=30, height=32, width=56, seed=i)
                             for i in range(6)])
    noise = np.random.default_rng(0)
    digests = set()
    for _ in range(8):
        # other encodes in between, as when a whole synthetic root is written
        V.write_video(tmp_path / f"other{suffix}", noise.integers(0, 256, (8, 48, 80, 3), dtype=np.uint8), 25)
        V.write_video(tmp_path / f"clip{suffix}", frames, 59.94)
        digests.add(hashlib.sha256((tmp_path / f"clip{suffix}").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_h264_without_macroblock_tree(tmp_path):
    """x264's mbtree made byte streams vary between encodes of the same frames in one process (it depends
    on heap contents, so a repeat-encode test catches it only sometimes): the written stream must say mbtree=0."""
    V.write_video(tmp_path / "clip.mp4", V.render_motion_clip(0, 5, num_frames=8, height=32, width=56, seed=0), 25)
    settings = (tmp_path / "clip.mp4").read_bytes().split(b"options: ", 1)[1].split(b"\0", 1)[0].split()
    assert b"mbtree=0" in settings and b"threads=1" in settings


def test_write_video_errors(tmp_path):
    frames = np.zeros((4, 48, 63, 3), np.uint8)
    with pytest.raises(SevereError, match="even"):
        V.write_video(tmp_path / "odd.mp4", frames, 25)
    with pytest.raises(SevereError, match="extension"):
        V.write_video(tmp_path / "x.mkv", np.zeros((4, 48, 64, 3), np.uint8), 25)
    with pytest.raises(SevereError, match="uint8"):
        V.write_video(tmp_path / "x.avi", np.zeros((4, 48, 64, 3), np.float32), 25)
    assert list(tmp_path.iterdir()) == []


def test_fps_fraction():
    assert V.fps_fraction(29.97) == Fraction(30000, 1001)
    assert V.fps_fraction(23.976) == Fraction(24000, 1001)
    assert V.fps_fraction(59.94) == Fraction(60000, 1001)
    assert V.fps_fraction(25.0) == 25 and V.fps_fraction(12.5) == Fraction(25, 2)
    with pytest.raises(SevereError):
        V.fps_fraction(0)


def test_write_frames_names_and_content(tmp_path):
    frames = V.render_oscillation_clip([0, 4], num_frames=5, height=H, width=W, seed=1)
    V.write_frames(tmp_path / "46GP8", frames, "46GP8-{:06d}.jpg")
    assert sorted(p.name for p in (tmp_path / "46GP8").iterdir()) == [f"46GP8-{i:06d}.jpg" for i in range(1, 6)]
    V.write_frames(tmp_path / "v", frames, "image_{:05d}.jpg", start=0, quality=95)
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == [f"image_{i:05d}.jpg" for i in range(5)]
    img = np.asarray(Image.open(tmp_path / "v" / "image_00002.jpg").convert("RGB"))
    assert img.shape == (H, W, 3) and np.abs(img.astype(int) - frames[2]).mean() < 8
    with pytest.raises(SevereError):
        V.write_frames(tmp_path / "w", frames, "constant.jpg")
