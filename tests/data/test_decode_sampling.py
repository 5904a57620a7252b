"""Decoding (PyAV and frame folders) and the 16 fps clip-sampling rules (docs/protocol.md §1.4, §4)."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from severe.data import decode
from severe.data.decode import DecodeError, FrameFolderReader, PyAVReader, make_reader
from severe.data.sampling import (
    clip_positions,
    random_start,
    segment_frames,
    source_index,
    test_clip_starts,
    timeline_frames,
    timeline_indices,
    timeline_length,
)
from severe.errors import SevereError

# ------------------------------------------------------------------------------------------------
# test media: frame k shows its number as two flat blocks (left: k % 16, right: k // 16, 16 levels apart)


def coded_frame(k: int, h: int = 48, w: int = 64) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2] = 8 + 16 * (k % 16)
    img[:, w // 2 :] = 8 + 16 * (k // 16)
    return img


def frame_number(img: np.ndarray) -> int:
    w = img.shape[1]
    lo = int(round((img[4:-4, 4 : w // 2 - 4].mean() - 8) / 16))
    hi = int(round((img[4:-4, w // 2 + 4 : -4].mean() - 8) / 16))
    return hi * 16 + lo


def write_coded_video(path: Path, n: int, fps: int = 25, gop: int = 12) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.bit_rate = 2_000_000
        s.codec_context.gop_size = gop
        for k in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(coded_frame(k), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def video75(tmp_path_factory) -> Path:
    return write_coded_video(tmp_path_factory.mktemp("v") / "v75.avi", 75)


# ------------------------------------------------------------------------------------------------
# PyAV backend


def test_info_of_avi(video75):
    info = decode.info(PyAVReader(), video75)
    assert (info.fps, info.num_frames, info.width, info.height) == (25.0, 75, 64, 48)
    assert info.duration == pytest.approx(3.0)


def test_read_returns_requested_frames_in_any_order_with_repeats(video75):
    want = [40, 3, 40, 74, 0, 12, 12, 61]
    frames = decode.read(PyAVReader(), video75, want)
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_number(f) for f in frames] == want
    assert np.array_equal(frames[0], frames[2])


def test_read_seeks_into_the_middle_instead_of_decoding_from_the_start(video75, monkeypatch):
    seeks: list[int] = []
    original = decode._PyAVVideo._seek

    def spy(self, frame_index):
        seeks.append(frame_index)
        original(self, frame_index)

    monkeypatch.setattr(decode._PyAVVideo, "_seek", spy)
    decoded: list[int] = []
    original_decode = decode._PyAVVideo._decode

    def count(self):
        for i, f in original_decode(self):
            decoded.append(i)
            yield i, f

    monkeypatch.setattr(decode._PyAVVideo, "_decode", count)
    with PyAVReader().open(video75) as h:
        frames = h.read([50, 52, 53])
    assert [frame_number(f) for f in frames] == [50, 52, 53]
    assert seeks == [50]
    # decoding starts at the keyframe at or before 50 (GOP 12: frame 48) and stops after 53
    assert decoded[0] <= 50 and decoded[0] >= 36 and decoded[-1] == 53


def test_read_all_and_exact_count(video75):
    with PyAVReader().open(video75) as h:
        assert h.info.exact is False
        frames = h.read_all()
        assert h.info.exact is True and h.info.num_frames == 75
    assert [frame_number(f) for f in frames] == list(range(75))


def test_reading_past_the_end_clamps_to_the_last_frame(video75):
    with PyAVReader().open(video75) as h:
        frames = h.read([73, 80, 500])
        assert h.info.exact and h.info.num_frames == 75
    assert [frame_number(f) for f in frames] == [73, 74, 74]
    with PyAVReader().open(video75) as h:  # only past-the-end indices: the last frame is fetched
        assert [frame_number(f) for f in h.read([90, 100])] == [74, 74]


def test_repeated_reads_on_one_handle(video75):
    with PyAVReader().open(video75) as h:
        assert [frame_number(f) for f in h.read([60])] == [60]
        assert [frame_number(f) for f in h.read([2, 5])] == [2, 5]
        got = [i for i, _ in h.iter_frames([70], to_end=True)]
        assert got == [70] and h.info.exact


def test_corrupt_and_missing_files_raise_decode_error(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DecodeError, match="bad.avi"):
        decode.read(PyAVReader(), bad, [0])
    with pytest.raises(DecodeError, match="nope.avi"):
        decode.read(PyAVReader(), tmp_path / "nope.avi", [0])
    assert issubclass(DecodeError, SevereError)


# ------------------------------------------------------------------------------------------------
# frame folders


def write_coded_frames(folder: Path, n: int, pattern: str, start: int = 1) -> Path:
    folder.mkdir(parents=True)
    for k in range(n):
        i = start + k
        Image.fromarray(coded_frame(k)).save(folder / pattern.format(i, index=i, name=folder.name), quality=95)
    return folder


def test_frame_folder_reading(tmp_path):
    folder = write_coded_frames(tmp_path / "vid01", 20, "{name}_{index:06d}.jpg")
    (folder / "notes.txt").write_text("ignored")
    reader = make_reader("frames", frames_fps=30, frame_pattern="{name}_{index:06d}.jpg")
    with reader.open(folder) as h:
        assert h.info.exact and h.info.num_frames == 20 and h.info.fps == 30.0
        assert (h.info.width, h.info.height) == (64, 48)
        frames = h.read([19, 0, 7, 7, 25])
    assert [frame_number(f) for f in frames] == [19, 0, 7, 7, 19]
    assert [frame_number(f) for f in decode.read_all(reader, folder)] == list(range(20))


def test_frame_folder_zero_based_pattern_and_errors(tmp_path):
    folder = write_coded_frames(tmp_path / "a", 5, "image_{:05d}.jpg", start=0)
    reader = FrameFolderReader(25, "image_{:05d}.jpg", start=0)
    assert [frame_number(f) for f in decode.read(reader, folder, [4, 1])] == [4, 1]
    (folder / "image_00004.jpg").unlink()
    (folder / "image_00009.jpg").write_bytes(b"not a jpeg")  # 5 files but a gap: not contiguous
    with pytest.raises(DecodeError, match="image_00004.jpg"):
        FrameFolderReader(25, "image_{:05d}.jpg", start=0).open(folder)
    with pytest.raises(DecodeError, match="no frames"):
        FrameFolderReader(25, "image_{:05d}.jpg").open(tmp_path)
    with pytest.raises(SevereError, match="fps"):
        make_reader("frames", frame_pattern="image_{:05d}.jpg")
    with pytest.raises(SevereError, match="pattern"):
        make_reader("frames", frames_fps=25)


def test_corrupt_jpeg_names_the_file(tmp_path):
    folder = write_coded_frames(tmp_path / "b", 3, "image_{:05d}.jpg")
    (folder / "image_00002.jpg").write_bytes(b"garbage")
    with pytest.raises(DecodeError, match="image_00002.jpg"):
        decode.read(FrameFolderReader(25, "image_{:05d}.jpg"), folder, [1])


# ------------------------------------------------------------------------------------------------
# sampling (pure functions)


def test_timeline_25fps_exact_indices():
    # floor(k * 25 / 16)
    assert timeline_indices(0.0, 16, 16, 25, 1000) == [0, 1, 3, 4, 6, 7, 9, 10, 12, 14, 15, 17, 18, 20, 21, 23]
    # start 0.5 s: floor(12.5 + 1.5625 k)
    assert timeline_indices(0.5, 5, 16, 25, 1000) == [12, 14, 15, 17, 18]


def test_timeline_30fps_and_12fps():
    assert timeline_indices(0.0, 10, 16, 30, 1000) == [0, 1, 3, 5, 7, 9, 11, 13, 15, 16]
    # 12 fps < 16 fps: source frames repeat
    assert timeline_indices(0.0, 12, 16, 12, 1000) == [0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8]
    # 29.97 fps: t = 1 s -> frame floor(29.97) = 29
    assert timeline_indices(1.0, 1, 16, 30000 / 1001, 1000) == [29]


def test_exact_products_never_land_one_frame_early():
    # 0.29 * 100 = 28.999999999999996 in floats
    assert source_index(0.29, 100) == 29 and timeline_indices(0.29, 1, 16, 100, 1000) == [29]
    assert source_index(0.1, 30) == 3 and source_index(0.7, 10) == 7
    assert [source_index(k / 16, 16) for k in range(100)] == list(range(100))


def test_loop_padding_wraps_from_the_clip_start():
    # 20 frames at 25 fps: timeline frames 0..12 exist (12 * 1.5625 = 18.75), then wrap
    idx = timeline_indices(0.0, 16, 16, 25, 20)
    assert idx[:13] == [0, 1, 3, 4, 6, 7, 9, 10, 12, 14, 15, 17, 18]
    assert idx[13:] == [0, 1, 3]
    assert timeline_indices(0.0, 16, 16, 25, 20, pad="clamp")[13:] == [19, 19, 19]
    assert timeline_indices(0.0, 5, 16, 25, 1) == [0] * 5
    with pytest.raises(ValueError):
        timeline_indices(5.0, 4, 16, 25, 20)


def test_timeline_length_and_frames():
    assert timeline_length(175, 25, 16) == 112
    assert timeline_length(50, 25, 16) == 32
    assert timeline_length(12, 25, 16) == 8
    assert timeline_length(60, 30, 16) == 32
    assert timeline_length(24, 12, 16) == 32
    assert timeline_length(1, 25, 16) == 1
    for n, fps in [(175, 25), (61, 30), (7, 12), (300, 29.97), (93, 60)]:
        tl = timeline_frames(n, fps, 16)
        assert tl == [math.floor(k * fps / 16 + 1e-6) for k in range(len(tl))]
        assert tl[-1] < n and math.floor(len(tl) * fps / 16 + 1e-6) >= n
    assert timeline_frames(100, 25, 16, start_sec=2.0)[:3] == [50, 51, 53]


def test_random_start_range():
    rng = np.random.default_rng(0)
    starts = [random_start(7.0, 2.0, rng) for _ in range(2000)]
    assert min(starts) >= 0.0 and max(starts) <= 5.0
    assert min(starts) < 0.1 and max(starts) > 4.9  # covers the whole range
    assert random_start(1.5, 2.0, rng) == 0.0 and random_start(2.0, 2.0, rng) == 0.0
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert random_start(7.0, 2.0, a) == random_start(7.0, 2.0, b)


def test_test_clip_starts_uniform():
    assert test_clip_starts(112, 32, 10) == [0, 8, 17, 26, 35, 44, 53, 62, 71, 80]
    assert test_clip_starts(42, 32) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert test_clip_starts(33, 32) == [0] * 9 + [1]
    assert test_clip_starts(32, 32) == [0] * 10  # n <= T: ten identical padded clips
    assert test_clip_starts(8, 32) == [0] * 10
    assert test_clip_starts(112, 32, 5) == [0, 20, 40, 60, 80]
    assert test_clip_starts(112, 32, 1) == [40]


def test_clip_positions_padding():
    assert clip_positions(0, 6, 4) == [0, 1, 2, 3, 0, 1]
    assert clip_positions(2, 5, 4) == [2, 3, 2, 3, 2]
    assert clip_positions(2, 5, 4, pad="clamp") == [2, 3, 3, 3, 3]
    assert clip_positions(3, 3, 10) == [3, 4, 5]


def test_segment_frames():
    assert segment_frames(1.0, 1.5, 25, 100) == (25, 38)
    assert segment_frames(1.0, 1.0, 25, 100) == (25, 26)  # at least one frame
    assert segment_frames(3.0, 9.0, 25, 100) == (75, 100)  # clipped to the video
    assert segment_frames(9.0, 10.0, 25, 100) == (99, 100)


def test_truncated_video_clamps_and_warns(video75, tmp_path, caplog):
    data = video75.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="severe.data.decode"):
        with PyAVReader().open(cut) as h:
            assert h.info.num_frames == 75 and not h.info.exact  # what the header claims
            frames = h.read([5, 74])
            n = h.info.num_frames
    assert h.info.exact and 5 < n < 75
    assert [frame_number(f) for f in frames] == [5, n - 1]
    assert "only" in caplog.text and "cut.avi" in caplog.text


def test_reader_one_call_helpers(video75):
    r = PyAVReader()
    assert r.info(video75).num_frames == 75
    assert [frame_number(f) for f in r.read(video75, [9, 1])] == [9, 1]
    assert len(r.read_all(video75)) == 75
