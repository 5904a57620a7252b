"""The fast training path is exact: region reads equal full reads, the planar transform equals the frozen
reference (tests/data/reference_transforms.py) bit for bit, and our decode equals plain PyAV decoding."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from severe.data.dataset import ClipDataset
from severe.data.decode import DecodeError, FrameFolderReader, PyAVReader
from severe.data.entries import VideoEntry
from severe.data.transforms import Normalization, TestTransform, TrainTransform, _grey, color_jitter

from .reference_transforms import _grey as reference_grey
from .reference_transforms import reference_apply, reference_color_jitter, reference_normalize


def _textured_video(path: Path, n: int = 60, w: int = 96, h: int = 72, codec: str = "mpeg4", seed: int = 0,
                    **stream_opts) -> Path:
    """Moving random texture with colour (chroma matters for region reads)."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (2 * h, 2 * w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w, h, stream_opts.pop("pix_fmt", "yuv420p")
        for k, v in stream_opts.items():
            setattr(s.codec_context, k, v)
        for i in range(n):
            img = np.ascontiguousarray(tex[i % h: i % h + h, (2 * i) % w: (2 * i) % w + w])
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("fast")
    out = [_textured_video(d / "a.avi", gop_size=12), _textured_video(d / "b.avi", w=98, h=70, seed=1)]
    try:
        out.append(_textured_video(d / "c.mp4", codec="libx264", seed=2, colorspace=1, color_range=1))
    except (av.FFmpegError, ValueError, AttributeError):  # no H.264 encoder in this build
        pass
    return out


def _plain_pyav(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


def test_decode_equals_plain_pyav_and_regions_equal_crops(videos):
    rng = np.random.default_rng(0)
    for path in videos:
        plain = _plain_pyav(path)
        reader = PyAVReader()
        assert np.array_equal(reader.read_all(path), plain), path
        n, h, w, _ = plain.shape
        for _ in range(6):
            idx = sorted(rng.integers(0, n, 12).tolist()) + [int(rng.integers(0, n))]  # repeats, unordered tail
            top, left = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            box = (top, left, int(rng.integers(1, h - top + 1)), int(rng.integers(1, w - left + 1)))
            with reader.open(path) as handle:
                full = handle.read(idx)
                region = handle.read(idx, box=box)
            assert np.array_equal(full, plain[idx])
            t, l, bh, bw = box
            assert np.array_equal(region, full[:, t:t + bh, l:l + bw]) and region.flags.writeable
        with reader.open(path) as handle:  # past the end: clamped to the last frame, region too
            assert np.array_equal(handle.read([n + 5], box=(1, 2, 3, 4)), plain[[n - 1], 1:4, 2:6])
        with reader.open(path) as handle, pytest.raises(DecodeError, match="outside"):
            handle.read([0], box=(h - 2, 0, 4, 4))


def test_frame_folder_region_reads(tmp_path):
    from PIL import Image

    frames = np.random.default_rng(1).integers(0, 256, (5, 30, 40, 3), dtype=np.uint8)
    folder = tmp_path / "v"
    folder.mkdir()
    for k, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"img_{k + 1:05d}.png")
    reader = FrameFolderReader(25.0, "img_{:05d}.png")
    with reader.open(folder) as handle:
        assert np.array_equal(handle.read([4, 0, 4], box=(3, 5, 20, 30)), frames[[4, 0, 4], 3:23, 5:35])


@pytest.mark.parametrize("kind", ["default", "bgr_no_norm", "short_side", "no_jitter"])
def test_train_transform_equals_the_reference_bit_for_bit(kind):
    tr = {"default": TrainTransform(), "bgr_no_norm": TrainTransform(norm=Normalization(None, None, "BGR")),
          "short_side": TrainTransform(size=64, short_side=(64, 90)), "no_jitter": TrainTransform(jitter=None)}[kind]
    rng = np.random.default_rng(5)
    for k in range(12):
        t, h, w = int(rng.integers(1, 17)), int(rng.integers(70, 200)), int(rng.integers(70, 260))
        base = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
        if k % 2:  # smooth content: saturated and mid-grey values, not only noise
            base = (np.cumsum(base, axis=2, dtype=np.uint32) // (1 + np.arange(w)[None, None, :, None])).astype(np.uint8)
        video = torch.from_numpy(base).permute(0, 3, 1, 2)
        p = tr.sample(h, w, torch.Generator().manual_seed(k))
        ref = reference_apply(tr, video, p)
        assert torch.equal(tr.apply(video, p), ref), (kind, k, p)
        assert torch.equal(tr.apply(video.contiguous(), p), ref)
        c = p.crop
        region = torch.from_numpy(np.ascontiguousarray(base[:, c.top:c.top + c.height, c.left:c.left + c.width]))
        assert torch.equal(tr.apply(region.permute(0, 3, 1, 2), p, cropped=True), ref)
    with pytest.raises(ValueError, match="crop box"):
        tr.apply(video, p, cropped=True)


def test_every_jitter_order_equals_the_reference():
    rng = np.random.default_rng(2)
    video = torch.from_numpy(rng.integers(0, 256, (3, 24, 20, 3), dtype=np.uint8)).permute(0, 3, 1, 2)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        for f in (0.6, 1.0, 1.4):
            for hue in (-0.2, 0.0, 0.13):
                assert torch.equal(color_jitter(video, order, f, 2 - f, f, hue),
                                   reference_color_jitter(video, order, f, 2 - f, f, hue)), (order, f, hue)


def test_planar_grey_equals_the_reference_for_every_colour():
    v = torch.arange(256, dtype=torch.float32)
    r, g = torch.meshgrid(v, v, indexing="ij")
    for b in range(256):
        hwc = torch.stack([r, g, torch.full_like(r, b)], -1).unsqueeze(0)  # [1, 256, 256, 3] as the reference
        ours = _grey(hwc.permute(3, 0, 1, 2).contiguous())
        assert torch.equal(ours, reference_grey(hwc)[..., 0]), b


def test_normalisation_equals_the_reference():
    video = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (4, 9, 7, 3), dtype=np.uint8)).permute(0, 3, 1, 2)
    for norm in (Normalization(), Normalization(None, None, "BGR"), Normalization((0.45,) * 3, (0.225,) * 3, "BGR")):
        assert torch.equal(norm.apply(video), reference_normalize(norm, video))
        assert torch.equal(norm.apply(video.float()), reference_normalize(norm, video.float()))


class _FullFrames(TrainTransform):
    """A subclass takes the generic path (full frames, then ``__call__``)."""


def test_dataset_train_items_equal_the_full_frame_path(videos):
    entries = [VideoEntry(p.name, k, p.name) for k, p in enumerate(videos)]
    kw = dict(media="video", mode="train", num_frames=16, clips_per_video=2, seed=3)
    fast = ClipDataset(entries, videos[0].parent, **kw)
    full = ClipDataset(entries, videos[0].parent, transform=_FullFrames(), **kw)
    for i in range(len(fast)):
        a, b = fast[i], full[i]
        assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_test_transform_unchanged_on_views(videos):
    """The dense test path stacks frames that are now buffer views: same clips as from copies."""
    ds = ClipDataset([VideoEntry(videos[0].name, 0, "a")], videos[0].parent, media="video", mode="test",
                     num_frames=8, clips_per_video=3)
    clips = ds[0][0]
    frames = torch.from_numpy(_plain_pyav(videos[0])).permute(0, 3, 1, 2)
    tt = TestTransform()
    n = frames.shape[0]
    timeline = [int(math.floor(k / 16 * 25 + 1e-6)) for k in range(int(n / 25 * 16) + 2)]
    timeline = [j for j in timeline if j < n]
    assert torch.equal(clips[0], tt(frames[timeline[:8]]))
