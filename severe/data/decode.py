"""Decoding videos and frame folders behind one small interface.

A :class:`VideoReader` opens a video (``open(path) -> VideoHandle``); the handle knows the video's
:class:`VideoInfo` and reads frames by **source frame number** (0 = the first frame of the stream):

* ``read(indices, box=None)`` -> uint8 ``[N, H, W, 3]`` RGB in the order asked for; indices may repeat
  and be unordered. The file is decoded once, in order: seek to the keyframe before the first needed
  frame, convert only the frames kept, stop after the last needed frame. ``box`` = (top, left, height,
  width) returns only that region of every frame: only the region is copied out of the converted frame.
* ``iter_frames(sorted_unique_indices, to_end=False, box=None)`` streams ``(index, frame)`` pairs (used
  by the test protocol to downscale frames as they arrive); ``to_end=True`` decodes to the end of the
  stream so that the frame count becomes exact. The frames may be read-only views of the decoder's
  buffers (each frame its own buffer); copy before writing into them.
* ``read_all()`` -> every frame of the video (one decode pass).

Readers also offer one-call helpers by path: ``reader.info(path)``, ``reader.read(path, indices)``,
``reader.read_all(path)`` (one open each; keep a handle open to combine them).

Containers may lie about their length (``stream.frames`` absent or wrong, durations rounded). The
handle starts from an estimate (``stream.frames``, else duration x fps, else a packet count) with
``info.exact = False``; whenever a decode reaches the end of the stream the count becomes exact and
``handle.info`` is updated. Asking for frames past the real end never fails: those indices get the
last frame of the video (clamping); the sampling layer decides about looping before it asks.

Backends (table :data:`READERS`): ``pyav`` (video files) and ``frames`` (JPEG folders, native fps
given by the caller). PyAV was chosen over OpenCV with numbers (benchmarks/bench_data_loading.py):
on UCF-like MPEG-4 .avi, seek + single-threaded conversion of the kept frames only decodes
~130 clips/s (T=32 at 16 fps from 25 fps) against ~105 for ``cv2.VideoCapture`` seek + grab/read,
with bit-identical frames. The big cost in stock PyAV is the swscale conversion run with automatic
threading (``threads=0``) on every frame; here the conversion is single-threaded and only for kept
frames. Decoders are single-threaded by default (best inside DataLoader workers); ``threads`` opts in.

Undecodable input raises :class:`DecodeError` (a :class:`~severe.errors.SevereError`) naming the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from severe.errors import SevereError

__all__ = [
    "DecodeError",
    "VideoInfo",
    "VideoHandle",
    "VideoReader",
    "Box",
    "PyAVReader",
    "FrameFolderReader",
    "READERS",
    "make_reader",
]

log = logging.getLogger(__name__)


class DecodeError(SevereError):
    """A video or frame that cannot be opened or decoded (the message names the file)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the sampler needs to know about a video.

    ``num_frames`` is exact when ``exact`` is True (counted, or the decoder reached the end), else the
    container's estimate. ``duration`` is always ``num_frames / fps`` seconds.
    """

    fps: float
    num_frames: int
    duration: float
    width: int
    height: int
    exact: bool = False


def _info(fps: float, num_frames: int, width: int, height: int, exact: bool) -> VideoInfo:
    return VideoInfo(float(fps), int(num_frames), num_frames / fps, int(width), int(height), exact)


#: a frame region: (top, left, height, width) in pixels
Box = tuple[int, int, int, int]


def _region(frame: np.ndarray, box: Box | None, path: Path) -> np.ndarray:
    """The ``box`` region of an ``[H, W, 3]`` frame (a view); the frame itself when ``box`` is None."""
    if box is None:
        return frame
    top, left, height, width = box
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > frame.shape[0] or left + width > frame.shape[1]:
        raise DecodeError(f"{path}: region (top {top}, left {left}, {height}x{width}) is outside a "
                          f"{frame.shape[1]}x{frame.shape[0]} frame (the frame size differs from the header?)")
    return frame[top:top + height, left:left + width]


class VideoHandle:
    """An open video. Subclasses implement :meth:`iter_frames`; the rest is shared."""

    info: VideoInfo
    path: Path
    truncated_from: int | None = None  # the header's frame count when fewer frames decode (a truncated file)

    def iter_frames(
        self, indices: Sequence[int] | None, to_end: bool = False, box: Box | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, rgb uint8 [H, W, 3])`` for the existing frames among ``indices``.

        ``indices`` must be sorted, unique and non-negative; ``None`` = every frame (implies
        ``to_end``). Frames past the real end are not yielded; reaching the end makes ``self.info``
        exact. ``box`` = (top, left, height, width): only that region (inside the frame, else
        :class:`DecodeError`). Frames may be read-only views (see the module docstring).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> "VideoHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, indices: Sequence[int], box: Box | None = None,
             buffer: Callable[[tuple[int, ...]], np.ndarray] | None = None) -> np.ndarray:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``[N, H, W, 3]`` (a new array).

        Indices at or past the real end of the video get its last frame. ``box`` = (top, left, height,
        width) reads only that region of every frame. ``buffer(shape)`` -> a uint8 array of that shape
        to hold the distinct frames instead of a new one (the training loader reuses its memory); the
        result is then that array when ``indices`` are distinct and in order.
        """
        idx = [int(i) for i in indices]
        if not idx:
            raise ValueError("read() needs at least one frame index")
        if min(idx) < 0:
            raise ValueError(f"negative frame index {min(idx)} for {self.path}")
        wanted = sorted(set(idx))
        # copy each frame into the clip as it arrives, so that its decoder buffer is freed (and reused)
        # at once instead of keeping every converted frame alive until a final stack
        pos = {j: k for k, j in enumerate(wanted)}
        out: np.ndarray | None = None
        got: dict[int, np.ndarray] = {}
        for i, frame in self.iter_frames(wanted, box=box):
            if out is None:
                shape = (len(wanted),) + frame.shape
                out = np.empty(shape, dtype=frame.dtype) if buffer is None else buffer(shape)
            elif frame.shape != out.shape[1:]:
                raise DecodeError(f"{self.path}: frame {i} is {frame.shape[1]}x{frame.shape[0]}, earlier frames "
                                  f"{out.shape[2]}x{out.shape[1]} (the frame size changes inside the video)")
            out[pos[i]] = frame
            got[i] = out[pos[i]]
        if len(got) < len(wanted):
            got = self._clamp_missing(wanted, got, box)
        elif idx == wanted:  # the usual training clip: distinct frames in order
            return out
        return np.stack([got[i] for i in idx])

    def read_all(self) -> np.ndarray:
        """Every frame of the video, uint8 ``[n, H, W, 3]`` (one decode pass; ``info`` becomes exact)."""
        frames: list[np.ndarray] = []
        expected = 0
        for i, frame in self.iter_frames(None):
            if i != expected:  # a gap in the timestamps: repeat the previous frame
                frames.extend(frames[-1:] * (i - expected))
            frames.append(frame)
            expected = i + 1
        if not frames:
            raise DecodeError(f"{self.path}: no decodable video frame")
        return np.stack(frames)

    def _clamp_missing(self, wanted: list[int], got: dict[int, np.ndarray],
                       box: Box | None = None) -> dict[int, np.ndarray]:
        """Give indices past the end the last frame (the end is known once a decode reached it)."""
        n = self.info.num_frames if self.info.exact else 0
        if n <= 0:
            raise DecodeError(f"{self.path}: no decodable video frame")
        last = n - 1
        if last not in got:
            got.update(self.iter_frames([last], box=box))
            if last not in got:
                raise DecodeError(f"{self.path}: cannot decode its last frame {last}")
        log.debug("%s: frames %s are past the end (%d frames); clamped", self.path,
                  [i for i in wanted if i not in got][:5], n)
        return {i: got[i] if i in got else got[last] for i in wanted}


class VideoReader(Protocol):
    """A decoding backend: ``open(path)`` returns a :class:`VideoHandle`; one-call helpers too."""

    name: str

    def open(self, path: Path) -> VideoHandle: ...

    def info(self, path: Path) -> VideoInfo: ...

    def read(self, path: Path, frame_indices: Sequence[int]) -> np.ndarray: ...

    def read_all(self, path: Path) -> np.ndarray: ...


class _ReaderBase:
    """``info`` / ``read`` / ``read_all`` by path, built on ``open`` (one open per call)."""

    def open(self, path: Path) -> VideoHandle:
        raise NotImplementedError

    def info(self, path: Path) -> VideoInfo:
        with self.open(path) as h:
            return h.info

    def read(self, path: Path, frame_indices: Sequence[int]) -> np.ndarray:
        with self.open(path) as h:
            return h.read(frame_indices)

    def read_all(self, path: Path) -> np.ndarray:
        with self.open(path) as h:
            return h.read_all()


def info(reader: VideoReader, path: Path) -> VideoInfo:
    """The :class:`VideoInfo` of ``path`` (estimate unless the backend counts exactly)."""
    return reader.info(path)


def read(reader: VideoReader, path: Path, frame_indices: Sequence[int]) -> np.ndarray:
    """Frames ``frame_indices`` of ``path`` (see :meth:`VideoHandle.read`)."""
    return reader.read(path, frame_indices)


def read_all(reader: VideoReader, path: Path) -> np.ndarray:
    """Every frame of ``path`` in one decode pass."""
    return reader.read_all(path)


# ------------------------------------------------------------------------------------------------
# PyAV backend
# ------------------------------------------------------------------------------------------------


class PyAVReader(_ReaderBase):
    """Video files through PyAV (FFmpeg). ``threads`` = decoder threads (1 = best in DataLoaders)."""

    name = "pyav"

    def __init__(self, threads: int = 1) -> None:
        if threads < 0:
            raise SevereError(f"decoder threads must be >= 0 (0 = FFmpeg's choice), got {threads}")
        self.threads = int(threads)

    def open(self, path: Path) -> VideoHandle:
        return _PyAVVideo(Path(path), self.threads)


class _PyAVVideo(VideoHandle):
    def __init__(self, path: Path, threads: int) -> None:
        import av  # imported here so that frame-only users never pay for it

        self._av = av
        self.path = path
        self._threads = threads
        try:
            self._container = av.open(str(path), metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise DecodeError(f"{path}: cannot open video ({_short(e)})") from None
        try:
            self._setup()
        except Exception:
            self._container.close()
            raise

    def _setup(self) -> None:
        c = self._container
        if not c.streams.video:
            raise DecodeError(f"{self.path}: the file has no video stream")
        st = c.streams.video[0]
        cc = st.codec_context
        cc.thread_count = self._threads
        if self._threads != 1:
            cc.thread_type = "AUTO"
        rate = st.average_rate or st.guessed_rate or st.base_rate
        if not rate or rate <= 0:
            raise DecodeError(f"{self.path}: the video stream has no frame rate")
        self._stream = st
        self._fps = float(rate)
        self._tb = float(st.time_base) if st.time_base else 1.0 / self._fps
        self._start_pts = st.start_time if st.start_time is not None else 0
        self._threads_sws = max(self._threads, 1)
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._used = False  # whether the demuxer has moved (then every read seeks first)
        n = self._estimate_frames()
        self.info = _info(self._fps, n, cc.width, cc.height, exact=False)

    def _estimate_frames(self) -> int:
        st, c = self._stream, self._container
        self._counted_header = False
        if st.frames and st.frames > 0:
            self._counted_header = True
            return int(st.frames)
        if st.duration and st.duration > 0:
            return max(int(round(st.duration * self._tb * self._fps)), 1)
        if c.duration and c.duration > 0:
            return max(int(round(c.duration / 1e6 * self._fps)), 1)
        # no length in the header: count packets (no decoding), then rewind
        n = sum(1 for p in c.demux(st) if p.size)
        self._used = True
        return max(n, 1)

    def close(self) -> None:
        self._container.close()

    def _index(self, frame, previous: int) -> int:
        """Source frame number of a decoded frame (from its timestamp; counting if it has none)."""
        if frame.pts is None:
            return previous + 1
        i = int(round((frame.pts - self._start_pts) * self._tb * self._fps))
        return i if i > previous else previous + 1

    def _seek(self, frame_index: int) -> None:
        ts = self._start_pts + int(frame_index / self._fps / self._tb)
        self._container.seek(ts, stream=self._stream, backward=True, any_frame=False)

    def _frames_from(self, first: int) -> Iterator[tuple[int, object]]:
        """Decoded ``(index, frame)`` from the keyframe at or before ``first`` (from 0 if it overshoots)."""
        seeked = first > 0
        if seeked or self._used:
            self._seek(first)
        self._used = True
        gen = self._decode()
        if seeked:
            head = next(gen, None)
            # seek landed past the frame, nowhere, or on frames without timestamps (which can only be
            # numbered by counting from the start): decode from the start instead
            if head is None or head[0] > first or head[1].pts is None:
                self._seek(0)
                gen = self._decode()
            else:
                gen = _chain_one(head, gen)
        yield from gen

    def _decode(self) -> Iterator[tuple[int, object]]:
        prev = -1
        it = self._container.decode(self._stream)
        while True:
            try:
                frame = next(it)
            except StopIteration:
                return
            except self._av.FFmpegError as e:
                raise DecodeError(f"{self.path}: decoding failed ({_short(e)})") from None
            prev = self._index(frame, prev)
            yield prev, frame

    def _rgb(self, frame, box: Box | None = None) -> np.ndarray:
        """RGB ``[H, W, 3]`` (or its ``box`` region) as a read-only view of the converted frame's buffer."""
        try:
            plane = self._reformatter.reformat(frame, format="rgb24", threads=self._threads_sws).planes[0]
        except (self._av.FFmpegError, ValueError) as e:
            raise DecodeError(f"{self.path}: cannot convert a frame to RGB ({_short(e)})") from None
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)  # keeps the frame alive
        rgb = rows[:, :3 * plane.width].reshape(plane.height, plane.width, 3)
        rgb.flags.writeable = False
        return _region(rgb, box, self.path)

    def iter_frames(
        self, indices: Sequence[int] | None, to_end: bool = False, box: Box | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        if indices is None:  # every frame
            last = -1
            for i, frame in self._frames_from(0):
                last = i
                yield i, self._rgb(frame, box)
            self._reached_end(last)
            return
        n_wanted = len(indices)
        if n_wanted == 0 and not to_end:
            return
        first = indices[0] if n_wanted else 0
        j = 0
        last = -1
        for i, frame in self._frames_from(first):
            last = i
            # each wanted index takes the first frame at or after it (exact for constant frame rates)
            if j < n_wanted and i >= indices[j]:
                rgb = self._rgb(frame, box)
                while j < n_wanted and indices[j] <= i:
                    yield indices[j], rgb
                    j += 1
            if j >= n_wanted and not to_end:
                return
        self._reached_end(last)

    def _reached_end(self, last: int) -> None:
        if last < 0:
            raise DecodeError(f"{self.path}: no decodable video frame")
        if not self.info.exact and self._counted_header and last + 1 < 0.9 * self.info.num_frames - 2:
            log.warning("%s: the header lists %d frames but only %d decode (truncated file?)",
                        self.path, self.info.num_frames, last + 1)
            self.truncated_from = self.info.num_frames
        self.info = _info(self._fps, last + 1, self.info.width, self.info.height, exact=True)


def _chain_one(head, rest):
    yield head
    yield from rest


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# ------------------------------------------------------------------------------------------------
# Frame-folder backend
# ------------------------------------------------------------------------------------------------


class FrameFolderReader(_ReaderBase):
    """Folders of JPEG frames named by a pattern, numbered contiguously from ``start``.

    ``pattern`` is a ``str.format`` pattern receiving the frame number positionally and as ``index``,
    and the folder name as ``name``: e.g. ``"image_{:05d}.jpg"`` (UCFRep), ``"{name}-{index:06d}.jpg"``
    (Charades), ``"{name}_{index:06d}.jpg"`` (AVA), ``"frame_{:010d}.jpg"`` (EK-100). Frame index 0 of
    the reader is file number ``start``. ``fps`` is the folder's native frame rate.
    """

    name = "frames"

    def __init__(self, fps: float, pattern: str, start: int = 1) -> None:
        if not fps or fps <= 0:
            raise SevereError(f"frame folders need their native fps (> 0), got {fps!r}")
        try:
            pattern.format(start, index=start, name="x")
        except (IndexError, KeyError, ValueError) as e:
            raise SevereError(f"frame name pattern {pattern!r} is not a valid format pattern ({e})") from None
        self.fps = float(fps)
        self.pattern = pattern
        self.start = int(start)
        self._counts: dict[Path, int] = {}

    def file(self, folder: Path, index: int) -> Path:
        """Path of frame ``index`` (0-based) of ``folder``."""
        k = self.start + index
        return folder / self.pattern.format(k, index=k, name=folder.name)

    def count(self, folder: Path) -> int:
        """Number of frames in ``folder`` (files with the pattern's extension; contiguity checked)."""
        folder = Path(folder)
        if folder in self._counts:
            return self._counts[folder]
        suffix = os.path.splitext(self.pattern)[1].lower()
        try:
            names = os.listdir(folder)
        except OSError as e:
            raise DecodeError(f"{folder}: cannot list the frame folder ({_short(e)})") from None
        n = sum(1 for x in names if x.lower().endswith(suffix))
        if n == 0:
            raise DecodeError(f"{folder}: no frames matching {self.pattern!r}")
        for k in (0, n - 1):
            if not self.file(folder, k).is_file():
                raise DecodeError(
                    f"{folder}: {n} '{suffix}' files but frame {self.file(folder, k).name} is missing; "
                    f"frames must be numbered contiguously from {self.start} as {self.pattern!r}"
                )
        self._counts[folder] = n
        return n

    def open(self, path: Path) -> VideoHandle:
        return _FrameFolder(Path(path), self)


class _FrameFolder(VideoHandle):
    def __init__(self, path: Path, reader: FrameFolderReader) -> None:
        self.path = path
        self._reader = reader
        n = reader.count(path)
        width, height = _jpeg_size(reader.file(path, 0))
        self.info = _info(reader.fps, n, width, height, exact=True)

    def iter_frames(
        self, indices: Sequence[int] | None, to_end: bool = False, box: Box | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        n = self.info.num_frames
        for i in range(n) if indices is None else indices:
            if i >= n:
                return
            yield i, _region(_load_jpeg(self._reader.file(self.path, i)), box, self.path)


def _jpeg_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # reads the header only
            return im.size
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DecodeError(f"{path}: cannot read the frame ({_short(e)})") from None


def _load_jpeg(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))  # convert() would copy RGB too
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DecodeError(f"{path}: cannot read the frame ({_short(e)})") from None


# ------------------------------------------------------------------------------------------------
# Backend table
# ------------------------------------------------------------------------------------------------

#: media kind -> factory(keyword options) -> reader
READERS: dict[str, Callable[..., VideoReader]] = {
    "video": lambda threads=1, **_: PyAVReader(threads=threads),
    "frames": lambda frames_fps=None, frame_pattern=None, frame_start=1, **_: FrameFolderReader(
        frames_fps, _require(frame_pattern, "frame name pattern"), frame_start
    ),
}


def _require(value, what: str):
    if value is None:
        raise SevereError(f"frame folders need a {what} (e.g. 'image_{{:05d}}.jpg')")
    return value


def make_reader(
    media: str,
    *,
    threads: int = 1,
    frames_fps: float | None = None,
    frame_pattern: str | None = None,
    frame_start: int = 1,
) -> VideoReader:
    """The reader for ``media`` ("video" or "frames")."""
    if media not in READERS:
        raise SevereError(f"unknown media kind {media!r}; expected one of {sorted(READERS)}")
    return READERS[media](
        threads=threads, frames_fps=frames_fps, frame_pattern=frame_pattern, frame_start=frame_start
    )

