"""Clip samplers (severe.data.sampling) give the indices the pre-refactor functions gave. The ``_old_*``
functions are verbatim copies of the code the samplers replaced (the oracle)."""

from __future__ import annotations

import numpy as np

from severe.data.sampling import (
    CentredClipSampler,
    RandomClipSampler,
    RandomStridedSampler,
    StridedClip,
    UniformClipSampler,
    UniformStridedSampler,
    clip_positions,
    random_start,
    segment_frames,
    test_clip_starts,
    timeline_indices,
)

# ---------------------------------------------------------------------------------------------------------
# oracle: the pre-refactor code


def _old_recognition_train_indices(num_frames, fps, src_fps, src_num_frames, duration, rng, segment=None):
    """severe/data/dataset.py ClipDataset._train_indices before the refactor (segment = (start s, end s, lo, hi))."""
    T, clip_sec = num_frames, num_frames / fps
    if segment is None:
        start = random_start(duration, clip_sec, rng)
        return timeline_indices(start, T, fps, src_fps, src_num_frames, pad="loop")
    seg_start, seg_end, lo, hi = segment
    start = seg_start + random_start(seg_end - seg_start, clip_sec, rng)
    return [max(lo, j) for j in timeline_indices(start, T, fps, src_fps, hi, pad="clamp")]


def _old_recognition_test_positions(n, num_frames, num_clips, pad):
    """The timeline positions ClipDataset._test_plan used before the refactor."""
    starts = test_clip_starts(n, num_frames, num_clips)
    return [clip_positions(s, num_frames, n, pad) for s in starts]


def _old_charades_train_start(length, span, rng):
    low, high = (0, length - span) if length >= span else (length - span, 0)
    return int(rng.integers(low, high, endpoint=True))


def _old_charades_view_starts(length, span, views):
    gap = float(max(length - span, 0)) / (views - 1) if views > 1 else 0.0
    return [int(round(gap * i)) for i in range(views)]


def _old_charades_clip_positions(start, length, num_frames, rate):
    return [min(max(start + rate * k, 0), length - 1) for k in range(num_frames)]


def _old_ava_keyframe_positions(second, video_frames, num_frames, rate):
    start = (second - 900) * 30 - (num_frames * rate) // 2
    return [min(max(start + rate * k, 0), video_frames - 1) for k in range(num_frames)]


# ---------------------------------------------------------------------------------------------------------


def test_random_clip_sampler_matches_the_old_recognition_path():
    r = np.random.default_rng(0)
    for k in range(400):
        src_fps = float(r.choice([12.0, 23.976, 25.0, 29.97, 30.0, 59.94]))
        n = int(r.integers(1, 400))
        duration = n / src_fps
        T, fps = int(r.choice([8, 16, 32])), 16.0
        sampler = RandomClipSampler(T, fps)
        a, b = np.random.default_rng([k, 1]), np.random.default_rng([k, 1])
        assert sampler(b, src_fps, n, duration) == _old_recognition_train_indices(T, fps, src_fps, n, duration, a)
        assert a.random() == b.random()
        s0 = float(r.uniform(0, duration))
        s1 = float(r.uniform(s0, duration + 1.0))
        lo, hi = segment_frames(s0, min(s1, duration), src_fps, n)
        seg = (s0, min(s1, duration), lo, hi)
        a, b = np.random.default_rng([k, 2]), np.random.default_rng([k, 2])
        assert sampler.segment(b, src_fps, *seg) == _old_recognition_train_indices(T, fps, src_fps, n, duration, a, seg)


def test_uniform_clip_sampler_matches_the_old_test_plan():
    for n in range(1, 90, 7):
        for T in (1, 8, 32):
            for K in (1, 2, 10):
                for pad in ("loop", "clamp"):
                    assert UniformClipSampler(K, T)(n, pad) == _old_recognition_test_positions(n, T, K, pad)


def test_strided_samplers_match_the_old_charades_and_ava_functions():
    r = np.random.default_rng(1)
    for k in range(400):
        T, rate = int(r.integers(1, 40)), int(r.integers(1, 10))
        length = int(r.integers(1, 600))
        span = (T - 1) * rate + 1
        assert StridedClip(T, rate).span == span
        a, b = np.random.default_rng([k, 3]), np.random.default_rng([k, 3])
        old = _old_charades_clip_positions(_old_charades_train_start(length, span, a), length, T, rate)
        assert RandomStridedSampler(T, rate)(length, b) == old
        assert a.random() == b.random()
        views = int(r.integers(1, 12))
        old_views = [_old_charades_clip_positions(s, length, T, rate) for s in _old_charades_view_starts(length, span, views)]
        assert UniformStridedSampler(T, rate, views)(length) == old_views
        second = int(r.integers(902, 1799))
        frames = int(r.integers(1, 30000))
        assert CentredClipSampler(T, rate)((second - 900) * 30, frames) == _old_ava_keyframe_positions(second, frames, T, rate)


def test_sampler_hand_cases():
    assert RandomStridedSampler(4, 2)(3, np.random.default_rng(0))[0] <= 0  # L < span: start in [L - span, 0]
    assert UniformStridedSampler(2, 3, 3).starts(10) == [0, 3, 6]  # span 4, gap (10 - 4) / 2
    assert CentredClipSampler(4, 2)(10, 100) == [6, 8, 10, 12]
    assert UniformClipSampler(3, 4)(10) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    clip = RandomClipSampler(4, 16.0)(np.random.default_rng(0), 16.0, 3, 3 / 16)
    assert clip == [0, 1, 2, 0]  # shorter than the clip: starts at 0, loop-padded
