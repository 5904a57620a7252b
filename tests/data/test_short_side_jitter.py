"""One short-side jitter (severe.data.transforms.ShortSideJitter) for EK-100, AVA and Charades: bit-identical
to the two implementations it replaced. The ``_old_*`` functions are verbatim copies of the pre-refactor code
(the oracle); every draw, size and offset and the generator state afterwards must match."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from severe.data.spatial import SpatialPlan, train_plan
from severe.data.transforms import CropBox, JitterCrop, ShortSideJitter, TrainTransform, sample_short_side_crop
from severe.errors import SevereError

# ---------------------------------------------------------------------------------------------------------
# oracle: the pre-refactor code, copied verbatim


def _old_ek_short_side_crop(height, width, short_side, size, generator):
    """severe/data/transforms.py sample_short_side_crop before the refactor (EK-100)."""
    lo, hi = int(short_side[0]), int(short_side[1])
    s = int(torch.randint(lo, hi + 1, (1,), generator=generator).item())
    scale = s / min(height, width)
    rh, rw = max(size, round(height * scale)), max(size, round(width * scale))
    top = int(torch.randint(0, rh - size + 1, (1,), generator=generator).item())
    left = int(torch.randint(0, rw - size + 1, (1,), generator=generator).item())
    side = min(round(size / scale), height, width)
    top, left = min(round(top / scale), height - side), min(round(left / scale), width - side)
    return CropBox(top, left, side, side)


def _old_short_side_size(height, width, size):
    """severe/detection/transforms.py short_side_size before the refactor (AVA, Charades)."""
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if width < height:
        return int(math.floor(float(height) / width * size)), size
    return size, int(math.floor(float(width) / height * size))


def _old_ava_draw_short_side(rng, low, high, inverse):
    """severe/detection/transforms.py draw_short_side before the refactor."""
    if inverse:
        return int(round(1.0 / rng.uniform(1.0 / high, 1.0 / low)))
    return int(round(rng.uniform(low, high)))


def _old_ava_jitter(height, width, rng, *, jitter, inverse, crop, flip_p=0.5):
    """severe/detection/transforms.py train_plan before the refactor (AVA and Charades training view)."""
    size = _old_ava_draw_short_side(rng, jitter[0], jitter[1], inverse)
    h, w = _old_short_side_size(height, width, size)
    top = int(rng.integers(0, h - crop, endpoint=True)) if h > crop else 0
    left = int(rng.integers(0, w - crop, endpoint=True)) if w > crop else 0
    flip = bool(rng.random() < flip_p)
    return SpatialPlan(h, w, (top, left, min(crop, h, w)), flip)


# ---------------------------------------------------------------------------------------------------------


def _cases(n, seed):
    """Random (height, width, low, high, crop): landscape, portrait and square frames, crops that fit and
    crops larger than the resized frame, ranges of one value."""
    r = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = (int(v) for v in r.integers(16, 500, 2))
        if r.random() < 0.1:
            w = h
        low = int(r.integers(8, 340))
        high = low if r.random() < 0.15 else int(r.integers(low, 400))
        crop = int(r.integers(8, 260))
        out.append((h, w, low, high, crop))
    return out


def test_ek100_draws_match_the_old_torch_implementation():
    for k, (h, w, low, high, crop) in enumerate(_cases(600, 0)):
        g_old, g_new = torch.Generator().manual_seed(k), torch.Generator().manual_seed(k)
        old = _old_ek_short_side_crop(h, w, (low, high), crop, g_old)
        assert sample_short_side_crop(h, w, (low, high), crop, g_new) == old, (h, w, low, high, crop)
        assert torch.equal(g_old.get_state(), g_new.get_state())  # the next draws (flip, colour) are the same


def test_ek100_train_transform_output_is_unchanged():
    video = torch.randint(0, 256, (4, 3, 60, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    t = TrainTransform(size=32, short_side=(36, 50))
    for seed in range(20):
        g_old = torch.Generator().manual_seed(seed)
        crop = _old_ek_short_side_crop(60, 80, (36, 50), 32, g_old)
        p = t.sample(60, 80, torch.Generator().manual_seed(seed))
        assert p.crop == crop
        rest = torch.Generator().manual_seed(seed)
        _old_ek_short_side_crop(60, 80, (36, 50), 32, rest)
        assert p.flip == bool(torch.rand(1, generator=rest).item() < 0.5)  # later draws unchanged
        assert torch.equal(t(video, seed), t.apply(video, p))


@pytest.mark.parametrize("inverse", [True, False])
def test_ava_charades_plans_match_the_old_numpy_implementation(inverse):
    for k, (h, w, low, high, crop) in enumerate(_cases(600, 1 + inverse)):
        r_old, r_new = np.random.default_rng([k, 3]), np.random.default_rng([k, 3])
        old = _old_ava_jitter(h, w, r_old, jitter=(low, high), inverse=inverse, crop=crop)
        new = train_plan(h, w, r_new, jitter=(low, high), inverse=inverse, crop=crop)
        assert new == old, (h, w, low, high, crop)
        assert r_old.random() == r_new.random()  # same number of draws consumed


def test_ava_plan_frames_and_boxes_are_bit_identical():
    r = np.random.default_rng(5)
    frames = torch.from_numpy(r.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)).permute(0, 3, 1, 2)
    boxes = np.array([[3.0, 4.0, 40.0, 30.0], [0.0, 0.0, 64.0, 48.0]])
    for seed in range(30):
        old = _old_ava_jitter(48, 64, np.random.default_rng(seed), jitter=(32, 60), inverse=True, crop=32)
        new = train_plan(48, 64, np.random.default_rng(seed), jitter=(32, 60), inverse=True, crop=32)
        assert torch.equal(new.frames(frames), old.frames(frames))
        np.testing.assert_array_equal(new.boxes(boxes, 48, 64), old.boxes(boxes, 48, 64))


def test_one_implementation_with_parameters():
    j = ShortSideJitter(40, 40, 32, draw="uniform", resize="floor")
    got = j.sample(60, 100, np.random.default_rng(0))
    assert (got.short_side, got.height, got.width, got.size) == (40, 40, 66, 32)
    assert 0 <= got.left <= 66 - 32 and 0 <= got.top <= 8
    # EK-100's rounded resize: long side round(100 * 40 / 60) = 67, and the window maps back to the source
    ek = ShortSideJitter(40, 40, 32, draw="integer", resize="round").sample(60, 100, torch.Generator().manual_seed(0))
    assert (ek.height, ek.width) == (40, 67)
    box = JitterCrop(40, 40, 67, 8, 35, 32).source_box(60, 100)
    assert box == CropBox(12, 52, 48, 48)
    # a resized frame smaller than the crop: no offset, a smaller window (PySlowFast's rule)
    small = ShortSideJitter(20, 20, 32, draw="uniform", resize="floor").sample(60, 100, np.random.default_rng(0))
    assert (small.height, small.width, small.top, small.size) == (20, 33, 0, 20) and small.left in (0, 1)
    with pytest.raises(SevereError, match="short-side jitter range"):
        ShortSideJitter(320, 256, 112)
    with pytest.raises(ValueError, match="draw must be one of"):
        ShortSideJitter(256, 320, 112, draw="gauss")
