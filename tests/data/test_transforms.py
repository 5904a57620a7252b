"""Train/test clip transforms and the normalisation convention (docs/protocol.md §1.4, §4)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from severe.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipParams,
    CropBox,
    Normalization,
    TestTransform,
    TrainTransform,
    adjust_hue,
    color_jitter,
    sample_resized_crop,
    sample_short_side_crop,
    scratch,
)
from severe.errors import SevereError

TCLR_META = {"method": "tclr", "normalize": None, "channel_order": "BGR"}
IMAGENET_META = {"normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}, "channel_order": "RGB"}


def random_video(t=4, h=60, w=80, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)


def test_train_output_shape_and_identical_frames_stay_identical():
    frame = random_video(1, 90, 120)
    clip = frame.expand(6, -1, -1, -1).contiguous()
    for seed in range(5):
        out = TrainTransform()(clip, seed)
        assert out.shape == (3, 6, 112, 112) and out.dtype == torch.float32
        for k in range(1, 6):
            assert torch.equal(out[:, k], out[:, 0])  # one crop/flip/jitter for the whole clip


def test_train_transform_is_reproducible_from_the_generator():
    v = random_video()
    tr = TrainTransform()
    assert torch.equal(tr(v, 7), tr(v, torch.Generator().manual_seed(7)))
    assert not torch.equal(tr(v, 7), tr(v, 8))
    assert tr.sample(60, 80, torch.Generator().manual_seed(3)) == tr.sample(60, 80, torch.Generator().manual_seed(3))


def test_channels_last_input_gives_the_same_result():
    v = random_video(3, 50, 70)
    cl = v.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # decoded-frame layout
    assert torch.equal(TrainTransform()(v, 1), TrainTransform()(cl, 1))


def test_resized_crop_box_distribution_and_fallback():
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        b = sample_resized_crop(240, 320, (0.08, 1.0), (3 / 4, 4 / 3), g)
        assert 0 <= b.top and b.top + b.height <= 240 and 0 <= b.left and b.left + b.width <= 320
        area = b.height * b.width / (240 * 320)
        assert 0.07 <= area <= 1.0
        assert 3 / 4 - 0.05 <= b.width / b.height <= 4 / 3 + 0.05
    # impossible scale -> centre crop with the aspect clamped to the ratio range
    assert sample_resized_crop(100, 400, (2.0, 2.0), (3 / 4, 4 / 3), g) == CropBox(0, 133, 100, 133)
    assert sample_resized_crop(240, 320, (2.0, 2.0), (3 / 4, 4 / 3), g) == CropBox(0, 0, 240, 320)


def test_short_side_crop_box_equals_resize_then_crop():
    g = torch.Generator().manual_seed(0)
    sides = set()
    for _ in range(300):
        b = sample_short_side_crop(240, 320, (256, 320), 112, g)
        assert b.height == b.width and 0 <= b.top and b.top + b.height <= 240 and 0 <= b.left and b.left + b.width <= 320
        sides.add(b.height)
    # box side = 112 * 240 / S for S in [256, 320]: 105 (S=256) down to 84 (S=320)
    assert min(sides) == 84 and max(sides) == 105
    # the draw order is S, top, left on the resized frame (inclusive offsets), mapped back by 240 / S
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    s = int(torch.randint(256, 321, (1,), generator=g2).item())
    rh, rw = round(240 * s / 240), round(320 * s / 240)
    top = int(torch.randint(0, rh - 112 + 1, (1,), generator=g2).item())
    left = int(torch.randint(0, rw - 112 + 1, (1,), generator=g2).item())
    side = round(112 * 240 / s)
    expected = CropBox(min(round(top * 240 / s), 240 - side), min(round(left * 240 / s), 320 - side), side, side)
    assert sample_short_side_crop(240, 320, (256, 320), 112, g1) == expected
    # short side already S: the box is a plain 112 crop, and the transform output is that crop of the source
    video = random_video(2, 128, 160)
    t = TrainTransform(size=112, short_side=(128, 128), jitter=None, flip_p=0.0, norm=Normalization(None, None))
    p = t.sample(128, 160, torch.Generator().manual_seed(1))
    assert (p.crop.height, p.crop.width) == (112, 112)
    crop = video[..., p.crop.top:p.crop.top + 112, p.crop.left:p.crop.left + 112]
    assert torch.allclose(t.apply(video, p), crop.permute(1, 0, 2, 3).float() / 255)
    with pytest.raises(SevereError, match="short-side jitter range"):
        TrainTransform(short_side=(320, 256))


def test_fixed_params_crop_flip_and_normalise():
    v = random_video(2, 120, 160)
    tr = TrainTransform(size=40, norm=Normalization(None, None, "RGB"))
    p = ClipParams(CropBox(10, 20, 40, 40), True, (), 1.0, 1.0, 1.0, 0.0)
    out = tr.apply(v, p)
    expected = v[:, :, 10:50, 20:60].flip(-1).permute(1, 0, 2, 3).float() / 255
    assert torch.allclose(out, expected, atol=1e-6)  # a crop of the output size is not resampled


def test_jitter_ops_match_torchvision_v2():
    """Each op equals v2's uint8 result except where the exact blend is an integer that v2's float32
    arithmetic misses by a rounding error (1.3 * 10 = 12.9999995 in float32, truncated to 12): there
    ours is the exact value, one level above."""
    v = random_video(3, 40, 40, seed=1)
    v[:, :, :5] = 77  # grey pixels
    v[:, 0, 5:10] = v[:, 1, 5:10] = 200  # ties between channels
    x = v.double()
    grey = (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).floor().unsqueeze(1)
    mean = grey.mean(dim=(-3, -2, -1), keepdim=True)
    exact = {0: lambda f: (x * f).clamp(0, 255), 1: lambda f: (x * f + mean * (1 - f)).clamp(0, 255),
             2: lambda f: (x * f + grey * (1 - f)).clamp(0, 255)}
    ref_ops = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation)
    for op, f in [(0, 1.3), (0, 0.6), (1, 1.4), (1, 0.7), (2, 1.25), (2, 0.6), (0, 1.2345), (1, 0.8765), (2, 1.111)]:
        ours = color_jitter(v, [op], 1.3 if op != 0 else f, f, f, 0.0).to(torch.uint8).permute(0, 3, 1, 2)
        v2 = ref_ops[op](v, f)
        tie = (exact[op](f) - exact[op](f).round()).abs() < 1e-4
        e = (ours.int() - exact[op](f).floor().int()).abs()  # exact arithmetic, but for ties in float32
        assert e.max() <= 1 and bool(tie[e > 0].all()) and (e > 0).float().mean() < 1e-3, (op, f)
        d = ours.int() - v2.int()
        assert d.min() >= 0 and d.max() <= 1 and bool(tie[d > 0].all()), (op, f)
    for h in (-0.5, -0.2, -0.05, 0.1, 0.2, 0.5):
        d = (adjust_hue(v, h).int() - F.adjust_hue(v, h).int()).abs()
        assert d.max() <= 1 and (d > 0).float().mean() < 1e-3, h
    assert torch.equal(adjust_hue(v, 0.0), v)
    # a full jitter in random order stays within a few levels of v2 on a tiny fraction of values
    ref = v
    for op, f in [(2, 1.2), (3, 0.15), (0, 0.8), (1, 1.3)]:
        ref = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)[op](ref, f)
    ours = color_jitter(v, [2, 3, 0, 1], 0.8, 1.3, 1.2, 0.15).to(torch.uint8).permute(0, 3, 1, 2)
    d = (ours.int() - ref.int()).abs()
    assert d.max() <= 3 and (d > 0).float().mean() < 0.02


def test_each_jitter_op_by_hand():
    """Values checkable with a pencil (uint8 in, truncation like v2)."""
    def jit(pixels, op, f):  # pixels: [(r, g, b), ...] as one frame of one row
        video = torch.tensor(pixels, dtype=torch.uint8).T.reshape(1, 3, 1, len(pixels))
        fs = [1.0, 1.0, 1.0, 0.0]
        fs[op] = f
        return color_jitter(video, [op], *fs)[0, 0].to(torch.int64).tolist()

    # brightness: 100 * 1.3 = 130; 200 * 1.3 = 260 -> 255; 101 * 0.7 = 70.7 -> 70
    assert jit([(100, 200, 101)], 0, 1.3) == [[130, 255, 131]]
    assert jit([(100, 200, 101)], 0, 0.7) == [[70, 140, 70]]
    # contrast: greys floor(0.9999 * 100) = 99 and floor(0.9999 * 200) = 199, frame mean 149;
    # 0.5 * 100 + 0.5 * 149 = 124.5 -> 124, 0.5 * 200 + 74.5 = 174.5 -> 174
    assert jit([(100, 100, 100), (200, 200, 200)], 1, 0.5) == [[124, 124, 124], [174, 174, 174]]
    # saturation: grey of (200, 100, 50) = floor(59.78 + 58.7 + 5.7) = 124
    assert jit([(200, 100, 50)], 2, 0.0) == [[124, 124, 124]]
    assert jit([(200, 100, 50)], 2, 0.5) == [[162, 112, 87]]
    assert jit([(200, 100, 50)], 2, 1.5) == [[238, 88, 13]]  # 300 - 62, 150 - 62, 75 - 62
    # hue: a third of the circle turns pure red into green, minus a third into blue, a half into cyan
    red = [(255, 0, 0), (128, 0, 0)]
    assert jit(red, 3, 1 / 3) == [[0, 255, 0], [0, 128, 0]]
    assert jit(red, 3, -1 / 3) == [[0, 0, 255], [0, 0, 128]]
    assert jit(red, 3, 0.5) == [[0, 255, 255], [0, 128, 128]]
    assert jit([(90, 90, 90)], 3, 0.3) == [[90, 90, 90]]  # grey has no hue


def test_jitter_params_follow_the_protocol():
    tr = TrainTransform()
    g = torch.Generator().manual_seed(0)
    orders = set()
    for _ in range(200):
        p = tr.sample(112, 112, g)
        assert sorted(p.jitter_order) == [0, 1, 2, 3]  # always all four ops
        orders.add(p.jitter_order)
        assert 0.6 <= p.brightness <= 1.4 and 0.6 <= p.contrast <= 1.4 and 0.6 <= p.saturation <= 1.4
        assert -0.2 <= p.hue <= 0.2
    assert len(orders) > 10  # random order


def test_imagenet_normalisation_values():
    v = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    v[:, 0], v[:, 1], v[:, 2] = 255, 128, 0
    out = Normalization().apply(v)
    assert out.shape == (3, 2, 4, 4)
    for c, raw in enumerate((255, 128, 0)):
        expected = (raw / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(out[c], torch.full((2, 4, 4), expected), atol=1e-6)


def test_tclr_meta_no_normalisation_and_bgr():
    norm = Normalization.from_meta(TCLR_META)
    assert norm == Normalization(None, None, "BGR")
    v = torch.zeros(1, 3, 130, 140, dtype=torch.uint8)
    v[:, 0], v[:, 1], v[:, 2] = 255, 128, 0
    out = TestTransform(norm=norm)(v)
    assert out.shape == (3, 1, 112, 112)
    assert torch.allclose(out[0], torch.zeros(1, 112, 112))  # B
    assert torch.allclose(out[1], torch.full((1, 112, 112), 128 / 255))  # G
    assert torch.allclose(out[2], torch.ones(1, 112, 112))  # R
    # TCLR's convention also wins over a task's own constants
    assert Normalization.from_meta(TCLR_META, task_mean=0.45, task_std=0.225) == norm


def test_from_meta_variants_and_errors():
    assert Normalization.from_meta(None) == Normalization()
    assert Normalization.from_meta(IMAGENET_META) == Normalization()
    task = Normalization.from_meta(IMAGENET_META, task_mean=0.45, task_std=0.225)
    assert task == Normalization((0.45,) * 3, (0.225,) * 3, "RGB")
    with pytest.raises(SevereError, match="channel_order"):
        Normalization.from_meta({"normalize": None})
    with pytest.raises(SevereError, match="channel_order"):
        Normalization.from_meta({"normalize": None, "channel_order": "GRB"})
    with pytest.raises(SevereError, match="normalize"):
        Normalization.from_meta({"normalize": [1, 2], "channel_order": "RGB"})


def test_test_transform_resizes_short_side_and_centre_crops():
    # already 128 on the short side: no resampling, so the crop is checkable pixel for pixel
    v = random_video(2, 128, 170)
    out = TestTransform(norm=Normalization(None, None, "RGB"))(v)
    top, left = 8, 29  # (128 - 112) / 2, round((170 - 112) / 2)
    expected = v[:, :, top : top + 112, left : left + 112].permute(1, 0, 2, 3).float() / 255
    assert torch.allclose(out, expected, atol=1e-6)
    # 240 x 320 -> 128 x 170 -> 112 x 112; a centred bright square stays centred
    big = torch.zeros(1, 3, 240, 320, dtype=torch.uint8)
    big[:, :, 100:140, 140:180] = 255
    small = TestTransform().spatial(big)
    assert small.shape == (1, 3, 112, 112)
    ys, xs = torch.nonzero(small[0, 0] > 128, as_tuple=True)
    assert abs(ys.float().mean().item() - 55.5) < 1 and abs(xs.float().mean().item() - 55.5) < 1
    ref = F.center_crop(F.resize(big, [128], interpolation=InterpolationMode.BILINEAR, antialias=True), [112, 112])
    assert torch.equal(small, ref)
    # portrait frames: the short side is the width
    assert TestTransform().spatial(torch.zeros(1, 3, 300, 200, dtype=torch.uint8)).shape == (1, 3, 112, 112)


def test_bad_inputs():
    with pytest.raises(ValueError):
        TrainTransform()(torch.zeros(2, 3, 10, 10))  # float, not uint8
    with pytest.raises(SevereError):
        Normalization((0.5, 0.5, 0.5), None)
    with pytest.raises(SevereError):
        Normalization((0.5, 0.5, 0.5), (0.0, 1.0, 1.0))
    assert math.isclose(Normalization.from_meta(None).std[0], 0.229)


def test_scratch_buffers_are_reused_per_key_and_capped():
    import numpy as np

    a = scratch("test_a", (4, 5), np.float32)
    b = scratch("test_a", (2, 3), np.uint8)  # smaller: the same memory
    assert a.shape == (4, 5) and a.dtype == np.float32 and b.shape == (2, 3) and np.shares_memory(a, b)
    assert not np.shares_memory(scratch("test_b", (2, 3)), b)  # another key, another buffer
    c = scratch("test_a", (100, 7), np.float32)  # grown
    assert c.shape == (100, 7) and np.shares_memory(c, scratch("test_a", (10,), np.float32))
    big = scratch("test_a", (65 << 20,))  # above the cap: a fresh array, the cached one is kept
    assert not np.shares_memory(big, c) and np.shares_memory(c, scratch("test_a", (10,), np.float32))


def test_train_transform_writes_into_out():
    """apply(out=) fills the given slot with exactly the values of a fresh output and returns it."""
    t = TrainTransform(size=16)
    video = torch.randint(0, 256, (4, 30, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    video = video.permute(0, 3, 1, 2)
    p = t.sample(30, 40, torch.Generator().manual_seed(1))
    batch = torch.full((2, 3, 4, 16, 16), float("nan"))
    assert t.apply(video, p, out=batch[1]).data_ptr() == batch[1].data_ptr()
    assert torch.equal(batch[1], t.apply(video, p)) and batch[0].isnan().all()
    for bad in (torch.empty(3, 4, 16, 15), torch.empty(3, 4, 16, 16, dtype=torch.float64), batch[:, 0].transpose(0, 1)):
        with pytest.raises(ValueError, match="out must be"):
            t.apply(video, p, out=bad)
