"""ClipDataset: train/test items, determinism across workers, failures, segments, and the bench."""

from __future__ import annotations

import logging
import pickle
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from severe.data.bench import bench_entries
from severe.data.dataset import FAILED_LABEL, ClipDataset
from severe.data.decode import PyAVReader
from severe.data.entries import VideoEntry
from severe.errors import SevereError

# frame k shows its number: left half 8 + 16 (k % 16), right half 8 + 16 (k // 16)


def coded_frame(k: int, h: int = 48, w: int = 64) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2] = 8 + 16 * (k % 16)
    img[:, w // 2 :] = 8 + 16 * (k // 16)
    return img


def frame_number(img: np.ndarray) -> int:  # img [H, W, 3]
    w = img.shape[1]
    lo = int(round((img[4:-4, 4 : w // 2 - 4].mean() - 8) / 16))
    hi = int(round((img[4:-4, w // 2 + 4 : -4].mean() - 8) / 16))
    return hi * 16 + lo


def clip_numbers(clip: torch.Tensor) -> list[int]:
    """Frame numbers of an untransformed uint8 clip [T, C, H, W]."""
    return [frame_number(f.permute(1, 2, 0).numpy()) for f in clip]


def write_video(path: Path, n: int, fps: int = 25, textured: bool = False, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.bit_rate = 2_000_000
        s.codec_context.gop_size = 12
        for k in range(n):
            img = coded_frame(k)
            if textured:
                img = np.clip(img.astype(int) + rng.integers(-40, 40, img.shape), 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def identity(video: torch.Tensor, generator=None) -> torch.Tensor:
    return video  # uint8 [T, C, H, W]: frame numbers stay readable


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    write_video(root / "a.avi", 75)  # 3 s
    write_video(root / "b.avi", 50, fps=25)  # 2 s
    write_video(root / "c.avi", 60, fps=30)  # 2 s
    write_video(root / "short.avi", 12)  # 0.48 s
    for k in range(3):
        write_video(root / f"tex{k}.avi", 40, textured=True, seed=k)
    (root / "broken.avi").write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return root


def entry(name: str, label: int, **kw) -> VideoEntry:
    return VideoEntry(name, label, name, **kw)


# ------------------------------------------------------------------------------------------------ train


def test_train_items_follow_the_16fps_timeline(media):
    ds = ClipDataset([entry("a.avi", 0), entry("c.avi", 1)], media, media="video", mode="train",
                     num_frames=8, clips_per_video=3, transform=identity, seed=0)
    assert len(ds) == 6
    for i in range(6):
        clip, label, v = ds[i]
        assert (label, v) == ((0, 0) if i % 2 == 0 else (1, 1))
        nums = clip_numbers(clip)
        fps, n = (25, 75) if v == 0 else (30, 60)
        # some start s in [0, duration - 0.5] reproduces the frames exactly
        first = nums[0]
        candidates = [s / 1000 for s in range(0, int((n / fps - 0.5) * 1000) + 1)]
        assert any(
            [int(np.floor((s + k / 16) * fps + 1e-6)) for k in range(8)] == nums
            for s in candidates if int(np.floor(s * fps + 1e-6)) == first
        ), nums


def test_short_training_video_is_loop_padded(media):
    ds = ClipDataset([entry("short.avi", 0)], media, media="video", mode="train", num_frames=16,
                     transform=identity)
    clip, _, _ = ds[0]
    # 12 frames at 25 fps = 8 timeline frames: floor(k * 25 / 16) for k < 8, then wrap
    assert clip_numbers(clip) == [0, 1, 3, 4, 6, 7, 9, 10] * 2


def test_train_segment_samples_inside_the_segment(media):
    e = entry("a.avi", 3, start_sec=1.0, end_sec=1.5)  # frames [25, 38)
    ds = ClipDataset([e], media, media="video", mode="train", num_frames=16, clips_per_video=5,
                     transform=identity)
    for i in range(5):
        nums = clip_numbers(ds[i][0])
        assert min(nums) >= 25 and max(nums) <= 37
        assert nums == sorted(nums) and nums[-1] == 37  # the clip is longer than the segment: clamped


def test_randomness_depends_on_seed_epoch_item(media):
    args = dict(media="video", mode="train", num_frames=4, clips_per_video=4, seed=3)
    ds = ClipDataset([entry("tex0.avi", 0)], media, **args)
    x0 = ds[1][0]
    assert torch.equal(ds[1][0], x0)
    assert not torch.equal(ds[2][0], x0)
    ds.set_epoch(1)
    assert not torch.equal(ds[1][0], x0)
    ds.set_epoch(0)
    assert torch.equal(ds[1][0], x0)
    other = ClipDataset([entry("tex0.avi", 0)], media, **{**args, "seed": 4})
    assert not torch.equal(other[1][0], x0)
    assert x0.shape == (3, 4, 112, 112) and x0.dtype == torch.float32


def test_same_batches_with_0_and_2_workers(media):
    entries = [entry(f"tex{k}.avi", k) for k in range(3)]
    ds = ClipDataset(entries, media, media="video", mode="train", num_frames=4, clips_per_video=2, seed=11)
    ds.set_epoch(2)

    def run(workers: int):
        g = torch.Generator().manual_seed(5)
        loader = DataLoader(ds, batch_size=2, shuffle=True, generator=g, num_workers=workers)
        return [(x.clone(), y.clone(), v.clone()) for x, y, v in loader]

    a, b = run(0), run(2)
    assert len(a) == len(b) == 3
    for (xa, ya, va), (xb, yb, vb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(va, vb)


def test_broken_training_video_is_logged_counted_and_resampled(media, caplog):
    entries = [entry("broken.avi", 7), entry("tex0.avi", 1), entry("tex1.avi", 2)]
    ds = ClipDataset(entries, media, media="video", mode="train", num_frames=4, clips_per_video=2, seed=0)
    with caplog.at_level(logging.WARNING, logger="severe.data.dataset"):
        clip, label, v = ds[0]  # item 0 is the broken video
    assert v in (1, 2) and label == entries[v].label  # the label of the clip actually returned
    assert ds.failures.count == 1 and ds.failed_keys() == ["broken.avi"]
    assert "broken.avi" in caplog.text
    again = ds[0]  # deterministic substitution
    assert again[2] == v and torch.equal(again[0], clip)
    assert ds.failures.count == 2
    # counted across DataLoader workers (shared memory)
    ds2 = ClipDataset(entries, media, media="video", mode="train", num_frames=4, clips_per_video=2, seed=0)
    labels = []
    for _, y, idx in DataLoader(ds2, batch_size=2, num_workers=2):
        labels += y.tolist()
        assert 0 not in idx.tolist()
    assert ds2.failures.count == 2 and ds2.failed_keys() == ["broken.avi"]
    assert 7 not in labels
    # a dataset copy (pickle) keeps its counts without sharing them
    copy = pickle.loads(pickle.dumps(ds2))
    assert copy.failures.count == 2


def test_only_broken_videos_raise(media):
    ds = ClipDataset([entry("broken.avi", 0)], media, media="video", mode="train", num_frames=4)
    with pytest.raises(SevereError, match="broken.avi"):
        ds[0]


# ------------------------------------------------------------------------------------------------ test


def test_test_clips_uniform_positions(media):
    ds = ClipDataset([entry("b.avi", 4)], media, media="video", mode="test", num_frames=16,
                     clips_per_video=10, transform=identity)
    clips, label, i = ds[0]
    assert (label, i) == (4, 0) and clips.shape == (10, 16, 3, 48, 64)
    # 50 frames at 25 fps -> 32 timeline frames; starts int(i * 16 / 9)
    starts = [0, 1, 3, 5, 7, 8, 10, 12, 14, 16]
    for c, s in zip(clips, starts):
        assert clip_numbers(c) == [int(np.floor((s + k) * 25 / 16 + 1e-6)) for k in range(16)]


def test_short_test_video_gives_identical_padded_clips(media):
    ds = ClipDataset([entry("short.avi", 0)], media, media="video", mode="test", num_frames=16,
                     clips_per_video=10, transform=identity)
    clips = ds[0][0]
    for c in clips:
        assert clip_numbers(c) == [0, 1, 3, 4, 6, 7, 9, 10] * 2


def test_test_mode_with_default_transform(media):
    ds = ClipDataset([entry("a.avi", 2)], media, media="video", mode="test", num_frames=8, clips_per_video=3)
    clips, label, _ = ds[0]
    assert clips.shape == (3, 3, 8, 112, 112) and clips.dtype == torch.float32 and label == 2
    assert torch.equal(ds[0][0], clips)  # deterministic


class LyingReader:
    """PyAV with a wrong frame-count estimate (as containers without an index report)."""

    name = "lying"

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def open(self, path):
        h = PyAVReader().open(path)
        h.info = replace(h.info, num_frames=int(h.info.num_frames * self.factor), exact=False)
        return h


@pytest.mark.parametrize("factor", [0.6, 1.5])
def test_test_mode_is_exact_when_the_container_lies(media, factor):
    kw = dict(media="video", mode="test", num_frames=16, clips_per_video=10, transform=identity)
    honest = ClipDataset([entry("a.avi", 0)], media, **kw)[0][0]
    lied = ClipDataset([entry("a.avi", 0)], media, reader=LyingReader(factor), **kw)[0][0]
    assert torch.equal(honest, lied)


def test_test_segment_clamped(media):
    e = entry("a.avi", 0, start_sec=2.0, end_sec=2.5)  # frames [50, 63)
    ds = ClipDataset([e], media, media="video", mode="test", num_frames=16, clips_per_video=2,
                     transform=identity)
    clips = ds[0][0]
    # 13 source frames -> 9 timeline frames floor(50 + 1.5625 k); T = 16 > 9 -> clamp to the last
    expected = [50, 51, 53, 54, 56, 57, 59, 60, 62] + [62] * 7
    assert clip_numbers(clips[0]) == expected and clip_numbers(clips[1]) == expected


def test_broken_test_video_raises_or_returns_marker(media, caplog):
    entries = [entry("tex0.avi", 0), entry("broken.avi", 1)]
    ds = ClipDataset(entries, media, media="video", mode="test", num_frames=4, clips_per_video=2)
    with pytest.raises(SevereError, match="broken.avi"):
        ds[1]
    ok = ClipDataset(entries, media, media="video", mode="test", num_frames=4, clips_per_video=2,
                     allow_failures=True)
    with caplog.at_level(logging.WARNING, logger="severe.data.dataset"):
        clips, label, i = ok[1]
    assert label == FAILED_LABEL and i == 1 and clips.shape == (2, 3, 4, 112, 112)
    assert ok.failures.count == 1 and ok.failed_keys() == ["broken.avi"] and "broken.avi" in caplog.text
    assert ok[0][1] == 0


# ------------------------------------------------------------------------------------------------ frames


def test_frame_folder_dataset(tmp_path):
    folder = tmp_path / "frames" / "v_X_g01_c01"
    folder.mkdir(parents=True)
    for k in range(30):
        Image.fromarray(coded_frame(k)).save(folder / f"image_{k + 1:05d}.jpg", quality=95)
    kw = dict(media="frames", frames_fps=25, frame_pattern="image_{:05d}.jpg", num_frames=8, transform=identity)
    test = ClipDataset([entry("frames/v_X_g01_c01", 0)], tmp_path, mode="test", clips_per_video=2, **kw)
    clips = test[0][0]
    # 30 frames at 25 fps -> 20 timeline frames; starts 0 and 12
    assert clip_numbers(clips[0]) == [int(np.floor(k * 25 / 16 + 1e-6)) for k in range(8)]
    assert clip_numbers(clips[1]) == [int(np.floor((12 + k) * 25 / 16 + 1e-6)) for k in range(8)]
    train = ClipDataset([entry("frames/v_X_g01_c01", 0)], tmp_path, mode="train", **kw)
    nums = clip_numbers(train[0][0])
    assert all(b - a in (1, 2) for a, b in zip(nums, nums[1:]))


# ------------------------------------------------------------------------------------------------ misc


def test_bad_arguments(media):
    with pytest.raises(SevereError, match="mode"):
        ClipDataset([entry("a.avi", 0)], media, media="video", mode="val", num_frames=4)
    with pytest.raises(SevereError, match="media"):
        ClipDataset([entry("a.avi", 0)], media, media="audio", mode="train", num_frames=4)
    with pytest.raises(SevereError, match="no entries"):
        ClipDataset([], media, media="video", mode="train", num_frames=4)
    with pytest.raises(SevereError, match="seed"):
        ClipDataset([entry("a.avi", 0)], media, media="video", mode="train", num_frames=4, seed=-1)


def test_bench_entries(media):
    entries = [entry(f"tex{k}.avi", k) for k in range(3)]
    out = bench_entries(entries, media, "video", clips=5, workers=0, num_frames=8, batch_size=2, progress=False)
    assert out["clips"] == 5 and out["workers"] == 0 and out["decoder"] == "pyav"
    assert out["clips_per_s"] > 0 and out["seconds"] > 0 and out["failures"] == 0


def test_truncated_test_video_uses_the_frames_that_decode(media, tmp_path):
    data = (media / "a.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with PyAVReader().open(tmp_path / "cut.avi") as h:
        n_src = len(h.read_all())
    ds = ClipDataset([entry("cut.avi", 0)], tmp_path, media="video", mode="test", num_frames=8,
                     clips_per_video=3, transform=identity)
    clips = ds[0][0]
    n = int(np.ceil(n_src * 16 / 25 - 1e-9))  # timeline frames of the frames that really exist
    for c, s in zip(clips, [0, (n - 8) // 2, n - 8]):
        assert clip_numbers(c) == [int(np.floor((s + k) * 25 / 16 + 1e-6)) for k in range(8)]


# ------------------------------------------------------------------------------------------------ batches


def _frame_folders(root: Path, n: int = 2) -> list[VideoEntry]:
    out = []
    for v in range(n):
        folder = root / f"frames{v}"
        folder.mkdir(parents=True)
        rng = np.random.default_rng(v)
        for k in range(30):
            img = np.clip(coded_frame(k).astype(int) + rng.integers(-40, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"image_{k + 1:05d}.jpg", quality=95)
        out.append(entry(f"frames{v}", v))
    return out


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("kind", ["video", "frames"])
def test_batches_written_in_place_equal_the_collated_items(media, tmp_path, kind, workers):
    """__getitems__ + collate_clips gives exactly default_collate's batches of the items one by one, through a
    Subset and a DistributedSampler, with and without workers; the default collate still accepts ClipBatch."""
    from torch.utils.data import DistributedSampler, Subset, default_collate

    from severe.data.dataset import ClipBatch, collate_clips

    if kind == "video":
        entries, root, kw = [entry(f"tex{k}.avi", k) for k in range(3)] + [entry("broken.avi", 9)], media, {}
    else:
        entries, root = _frame_folders(tmp_path), tmp_path
        kw = dict(frames_fps=25, frame_pattern="image_{:05d}.jpg")
    ds = ClipDataset(entries, root, media=kind, mode="train", num_frames=8, clips_per_video=2, seed=5, **kw)
    ds.set_epoch(1)
    picks = Subset(ds, list(range(len(ds)))[::-1])
    batch = picks.__getitems__([0, 2, 3])
    assert isinstance(batch, ClipBatch) and len(batch) == 3
    expected = default_collate([ds[i] for i in (len(ds) - 1, len(ds) - 3, len(ds) - 4)])
    for got in (collate_clips(batch), default_collate(batch)):
        assert len(got) == 3 and all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(got, expected))
    assert collate_clips(batch)[0].data_ptr() == batch[0][0].data_ptr()  # the batch tensor itself, no copy

    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=3, drop_last=True)
    sampler.set_epoch(4)
    fast = DataLoader(ds, batch_size=3, sampler=sampler, num_workers=workers, collate_fn=collate_clips)
    plain = DataLoader(ds, batch_size=3, sampler=sampler, num_workers=0)
    a = [[t.clone() for t in b] for b in fast]
    b = [[default_collate([ds[int(i)] for i in idx])[k] for k in range(3)]
         for idx in torch.tensor(list(sampler)).split(3)]
    c = list(plain)
    assert len(a) == len(b) == len(c) >= 1
    for xa, xb, xc in zip(a, b, c):
        assert all(torch.equal(p, q) and torch.equal(q, r) for p, q, r in zip(xa, xb, xc))


def test_collate_clips_passes_other_items_to_default_collate(media):
    from torch.utils.data import default_collate

    from severe.data.dataset import collate_clips

    test = ClipDataset([entry("tex0.avi", 0), entry("tex1.avi", 1)], media, media="video", mode="test",
                       num_frames=4, clips_per_video=2, transform=identity)
    items = test.__getitems__([0, 1])
    assert type(items) is list  # a custom test transform: plain items
    assert all(torch.equal(a, b) for a, b in zip(collate_clips(items), default_collate([test[0], test[1]])))
    custom = ClipDataset([entry("tex0.avi", 0)], media, media="video", mode="train", num_frames=4, transform=identity)
    assert type(custom.__getitems__([0])) is list  # a custom transform: no preallocated batch
    with pytest.raises(IndexError):
        ClipDataset([entry("tex0.avi", 0)], media, media="video", mode="train", num_frames=4).__getitems__([0, 1])


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("kind", ["video", "frames"])
def test_test_batches_written_in_place_equal_the_collated_items(media, tmp_path, kind, workers):
    """Test mode: __getitems__ writes the K clips of every video into one [B, K, C, T, S, S] batch, equal to
    default_collate of the items one by one (a failing video, allowed, gives zeros and FAILED_LABEL); the
    evaluation loader's collate_clips takes that batch without a copy."""
    from torch.utils.data import default_collate

    from severe.data.dataset import ClipBatch, collate_clips
    from severe.data.transforms import Normalization, TestTransform

    if kind == "video":
        entries, root, kw = [entry("tex0.avi", 0), entry("broken.avi", 9), entry("tex1.avi", 1)], media, {}
    else:
        entries, root = _frame_folders(tmp_path, 3), tmp_path
        kw = dict(frames_fps=25, frame_pattern="image_{:05d}.jpg")
    bgr = TestTransform(resize=40, crop=32, norm=Normalization(channel_order="BGR"))
    ds = ClipDataset(entries, root, media=kind, mode="test", num_frames=8, clips_per_video=3, allow_failures=True,
                     transform=bgr, **kw)
    batch = ds.__getitems__([2, 0, 1])
    assert isinstance(batch, ClipBatch) and batch.stacked[0].shape == (3, 3, 3, 8, 32, 32)
    expected = default_collate([ds[i] for i in (2, 0, 1)])
    for got in (collate_clips(batch), default_collate(batch)):
        assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(got, expected))
    assert collate_clips(batch)[0].data_ptr() == batch[0][0].data_ptr()
    assert not expected[0][0].eq(0).all()  # real clips, not zeros
    if kind == "video":
        assert expected[1][2] == FAILED_LABEL and expected[0][2].eq(0).all()

    fast = DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=collate_clips)
    for got, idx in zip(fast, ([0, 1], [2])):
        want = default_collate([ds[i] for i in idx])
        assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_normalization_writes_into_out():
    """Normalization.apply(out=) fills the slot with exactly the values of a fresh output (RGB and BGR)."""
    from severe.data.transforms import Normalization

    video = torch.randint(0, 256, (4, 3, 6, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for norm in (Normalization(), Normalization(channel_order="BGR"), Normalization(None, None)):
        slots = torch.full((2, 3, 4, 6, 5), float("nan"))
        assert norm.apply(video, out=slots[0]).data_ptr() == slots[0].data_ptr()
        assert torch.equal(slots[0], norm.apply(video)) and slots[1].isnan().all()
    with pytest.raises(ValueError, match="out must be"):
        Normalization().apply(video, out=torch.empty(3, 4, 6, 4))


@pytest.mark.parametrize("workers", [0, 2])
def test_uint8_training_clips_normalised_by_the_model_equal_the_float_clips(media, workers):
    """normalize=False: the same clips as uint8 [C, T, S, S] (items and preassembled batches, with and without
    workers); the model's ClipNormalizer turns them into the loader's float clips up to float rounding, for
    ImageNet RGB, BGR and TCLR's /255-only conventions."""
    from severe.data.dataset import ClipBatch, collate_clips
    from severe.data.transforms import Normalization, TrainTransform
    from severe.models import ClipNormalizer

    entries = [entry(f"tex{k}.avi", k) for k in range(3)]
    for norm in (Normalization(), Normalization(channel_order="BGR"), Normalization(None, None)):
        kw = dict(media="video", mode="train", num_frames=8, clips_per_video=2, seed=3,
                  transform=TrainTransform(size=24, norm=norm))
        floats, ints = ClipDataset(entries, media, **kw), ClipDataset(entries, media, normalize=False, **kw)
        normalizer = ClipNormalizer(*norm.affine(), norm.channel_order)
        for i in (0, 3, 5):
            clip, label, v = ints[i]
            assert clip.dtype == torch.uint8 and clip.shape == (3, 8, 24, 24) and (label, v) == floats[i][1:]
            assert torch.allclose(normalizer(clip[None])[0], floats[i][0], rtol=0, atol=1e-6)
        batch = ints.__getitems__([4, 1])
        assert isinstance(batch, ClipBatch) and batch.stacked[0].dtype == torch.uint8
        assert torch.equal(batch.stacked[0], torch.stack([ints[4][0], ints[1][0]]))
    loader = DataLoader(ints, batch_size=3, num_workers=workers, collate_fn=collate_clips)
    for k, (clips, labels, videos) in enumerate(loader):
        assert clips.dtype == torch.uint8
        assert torch.equal(clips, torch.stack([ints[j][0] for j in range(3 * k, min(3 * k + 3, len(ints)))]))


def test_uint8_clips_need_the_protocol_transform(media):
    for mode in ("train", "test"):
        with pytest.raises(SevereError, match="protocol transform of the mode"):
            ClipDataset([entry("tex0.avi", 0)], media, media="video", mode=mode, num_frames=4, transform=identity,
                        normalize=False)
    from severe.data.transforms import TestTransform, TrainTransform
    with pytest.raises(SevereError, match="protocol transform of the mode"):
        ClipDataset([entry("tex0.avi", 0)], media, media="video", mode="test", num_frames=4, transform=TrainTransform(),
                    normalize=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_uint8_test_clips_normalised_by_the_model_equal_the_float_clips(media, workers):
    """Test mode, normalize=False: the K clips of every video as uint8 [K, C, T, S, S] (items and preassembled
    batches); the model's ClipNormalizer gives the loader's float clips up to float rounding; an allowed failure
    is uint8 zeros with FAILED_LABEL."""
    from severe.data.dataset import collate_clips
    from severe.data.transforms import Normalization, TestTransform
    from severe.models import ClipNormalizer

    entries = [entry("tex0.avi", 0), entry("broken.avi", 9), entry("tex1.avi", 1)]
    for norm in (Normalization(), Normalization(channel_order="BGR")):
        kw = dict(media="video", mode="test", num_frames=8, clips_per_video=3, allow_failures=True,
                  transform=TestTransform(resize=40, crop=32, norm=norm))
        floats, ints = ClipDataset(entries, media, **kw), ClipDataset(entries, media, normalize=False, **kw)
        normalizer = ClipNormalizer(*norm.affine(), norm.channel_order)
        for i in (0, 2):
            clips, label, v = ints[i]
            assert clips.dtype == torch.uint8 and clips.shape == (3, 3, 8, 32, 32) and (label, v) == floats[i][1:]
            assert torch.allclose(normalizer(clips), floats[i][0], rtol=0, atol=1e-6)
        failed = ints[1]
        assert failed[1] == FAILED_LABEL and failed[0].dtype == torch.uint8 and failed[0].eq(0).all()
    batches = list(DataLoader(ints, batch_size=2, num_workers=workers, collate_fn=collate_clips))
    assert [b[0].dtype for b in batches] == [torch.uint8] * 2
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.stack([ints[i][0] for i in range(3)]))
    assert torch.cat([b[1] for b in batches]).tolist() == [0, FAILED_LABEL, 1]
