"""The torch Dataset of recognition clips (docs/protocol.md §1.3, §1.4, §4).

``ClipDataset`` is built from explicit arguments (entries of one split, the dataset folder, media kind,
mode, T, fps, K, transform, seed). Items:

* **train** (``len = K * N``; item ``i`` is video ``i % N``): ``(clip float [C,T,H,W], label, video)``.
  All randomness of item ``i`` (clip start, crop, flip, jitter) comes from
  ``numpy.random.default_rng([seed, epoch, i, attempt])``, never from the worker id or a global RNG, so
  a batch is identical whatever the number of DataLoader workers. Call :meth:`ClipDataset.set_epoch`
  before creating each epoch's iterator (workers copy the dataset when the iterator starts; do not use
  ``persistent_workers=True``).
* **test** (``len = N``): ``(clips float [K,C,T,H,W], label, i)``: the whole video on the 16 fps timeline
  (decoded once), K uniformly spaced clips, centre view.

Undecodable videos (docs/datasets.md §13, docs/differences.md §6) are never silently replaced:

* train: the failure is logged (a warning the first time a process meets that video, debug after),
  counted, and the item is drawn again from ANOTHER video chosen deterministically from
  ``(seed, epoch, i, attempt)``; the returned label and video index are those of the clip actually
  returned. After ``max_retries`` failed draws in a row the item raises :class:`SevereError`.
* test: :class:`SevereError` naming the file, unless ``allow_failures``; then the item is the marker
  ``(zeros [K,C,T,S,S], FAILED_LABEL, i)`` and the evaluator must skip and count items whose label is
  :data:`FAILED_LABEL` (-1).

Failure counting across DataLoader workers: :attr:`ClipDataset.failures` (a :class:`FailureLog`) lives
in shared memory created with the dataset, so workers (fork or spawn) write into the parent's copy.
After (or during) an epoch the caller reads ``dataset.failures.count`` (failure events) and
``dataset.failed_keys()`` (which videos). Counts are metadata only: they never influence sampling.

Short videos are padded, never dropped, and counted in :attr:`ClipDataset.short_videos` (a
:class:`ShortVideoLog`, shared like the failures): a truncated file (its header lists more frames than
decode), a single-frame video, and a whole video shorter than one clip; :meth:`ShortVideoLog.record` says how
each kind was padded (for results.json and the log).

Batches without a collate copy: a DataLoader fetches a batch of items through
:meth:`ClipDataset.__getitems__`, which writes each clip straight into its slot of one preallocated
``[B, C, T, S, S]`` tensor (test mode: ``[B, K, C, T, S, S]``; in shared memory inside a worker) and returns a
:class:`ClipBatch`. Give the loader ``collate_fn=collate_clips`` (the training and evaluation loaders do) to
take that batch as is; the default collate still works (it stacks the slots: same values, one copy more).
With ``normalize=False`` the clips stay uint8 and the model normalises them on its device
(:class:`~severe.models.heads.ClipNormalizer`): the loader skips its last float pass and hands over a quarter
of the bytes (worker to main process, host to GPU).

Segments (``start_sec``/``end_sec`` set, EK-100): the start is drawn inside the segment, and frame
positions are clamped to the segment (its last frame repeats) in both modes; whole videos loop-pad.
"""

from __future__ import annotations

import bisect
import logging
import math
import multiprocessing as mp
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from severe.data.decode import DecodeError, VideoHandle, VideoInfo, VideoReader, make_reader
from severe.data.entries import VideoEntry
from severe.data.sampling import (RandomClipSampler, UniformClipSampler, segment_frames, timeline_frames,
                                  timeline_length)
from severe.data.transforms import TestTransform, TrainTransform, scratch
from severe.errors import SevereError

__all__ = ["ClipDataset", "ClipBatch", "collate_clips", "FailureLog", "ShortVideoLog", "FAILED_LABEL", "MODES"]

log = logging.getLogger(__name__)

#: label of the marker item returned for an undecodable test video when failures are allowed
FAILED_LABEL = -1
MODES = ("train", "test")
_CHUNK = 16  # test mode: frames shrunk per batch while decoding


class FailureLog:
    """Failure events and failed video indices, shared by the DataLoader workers of one dataset.

    Lock-free shared memory (works with fork and spawn workers): each worker counts in its own slot
    (no lost updates), a failed video sets its flag byte.
    """

    _SLOTS = 257  # slot 0: the main process; worker w: slot 1 + w % 256

    def __init__(self, num_videos: int) -> None:
        self._counts = mp.RawArray("q", self._SLOTS)
        self._flags = mp.RawArray("b", max(num_videos, 1))

    def record(self, video_index: int) -> None:
        info = torch.utils.data.get_worker_info()
        slot = 0 if info is None else 1 + info.id % (self._SLOTS - 1)
        self._counts[slot] += 1
        self._flags[video_index] = 1

    @property
    def count(self) -> int:
        """Number of failure events (one video failing in 3 items counts 3)."""
        return int(sum(self._counts))

    def videos(self) -> list[int]:
        """Indices of the videos that failed at least once."""
        return [i for i, f in enumerate(self._flags) if f]

    def __getstate__(self) -> dict:
        from multiprocessing.context import get_spawning_popen

        if get_spawning_popen() is not None:  # a worker being started: share the memory
            return {"counts": self._counts, "flags": self._flags}
        return {"snapshot": (list(self._counts), bytes(self._flags))}  # a plain copy (pickle, deepcopy)

    def __setstate__(self, state: dict) -> None:
        if "snapshot" in state:
            counts, flags = state["snapshot"]
            self._counts = mp.RawArray("q", counts)
            self._flags = mp.RawArray("b", len(flags))
            self._flags[:] = flags
        else:
            self._counts, self._flags = state["counts"], state["flags"]


class ShortVideoLog:
    """Which videos were padded because they are short, by kind, shared by the DataLoader workers (one flag
    byte per video and kind in shared memory, like :class:`FailureLog`). Metadata only: never changes a clip."""

    # kind -> how a clip of such a video is padded, per dataset mode
    PADDING = {
        "truncated": {"train": "positions past the decodable end repeat the last decoded frame",
                      "test": "clips re-planned on the decodable frames (loop-padded when shorter than a clip)"},
        "one_frame": {"train": "the single frame repeated", "test": "the single frame repeated"},
        "shorter_than_clip": {"train": "loop-padded: the clip's frames repeat from its start",
                              "test": "loop-padded: the clip's frames repeat from its start"},
    }
    EXAMPLES = 10

    def __init__(self, num_videos: int) -> None:
        self._flags = {kind: mp.RawArray("b", max(num_videos, 1)) for kind in self.PADDING}

    def mark(self, video_index: int, kind: str) -> None:
        self._flags[kind][video_index] = 1

    def videos(self, kind: str) -> list[int]:
        return [i for i, f in enumerate(self._flags[kind]) if f]

    def record(self, keys: Sequence[str], mode: str) -> dict:
        """``{kind: count, ..., "padding": {kind: how}, "examples": {kind: first keys}}`` (kinds seen only)."""
        out: dict = {kind: 0 for kind in self.PADDING}
        out["padding"], out["examples"] = {}, {}
        for kind, how in self.PADDING.items():
            seen = self.videos(kind)
            out[kind] = len(seen)
            if seen:
                out["padding"][kind] = how[mode]
                out["examples"][kind] = [keys[i] for i in seen[: self.EXAMPLES]]
        return out

    def __getstate__(self) -> dict:
        from multiprocessing.context import get_spawning_popen

        if get_spawning_popen() is not None:  # a worker being started: share the memory
            return {"flags": self._flags}
        return {"snapshot": {k: bytes(v) for k, v in self._flags.items()}}

    def __setstate__(self, state: dict) -> None:
        if "snapshot" in state:
            self._flags = {}
            for kind, flags in state["snapshot"].items():
                self._flags[kind] = mp.RawArray("b", len(flags))
                self._flags[kind][:] = flags
        else:
            self._flags = state["flags"]


def short_video_summary(dataset: "ClipDataset", split: str) -> dict:
    """The dataset's :class:`ShortVideoLog` record (for results.json), logged as one warning line when any
    video was padded."""
    dataset = getattr(dataset, "base", dataset)  # a wrapper (arrow of time) counts in its ClipDataset
    record = dataset.short_videos.record([e.key for e in dataset.entries], dataset.mode)
    kinds = [k for k in ShortVideoLog.PADDING if record[k]]
    if kinds:
        log.warning("%s split: %s padded (%s)", split,
                    ", ".join(f"{record[k]} {k.replace('_', ' ')} videos" for k in kinds),
                    "; ".join(f"{k.replace('_', ' ')}: {record['padding'][k]}" for k in kinds))
    return record


class ClipBatch(list):
    """The items of one batch (a list, so ``default_collate`` stacks them as usual) whose clips are views of one
    ``[B, C, T, S, S]`` (test mode ``[B, K, C, T, S, S]``) tensor; ``stacked`` is the collated batch
    ``[clips, labels, videos]``, exactly what ``default_collate`` returns for the items."""

    def __init__(self, items: list, stacked: list) -> None:
        super().__init__(items)
        self.stacked = stacked


def collate_clips(batch: list):
    """DataLoader ``collate_fn``: a :class:`ClipBatch` as its already stacked batch (no copy), anything else
    through ``default_collate``."""
    if isinstance(batch, ClipBatch):
        return batch.stacked
    return default_collate(batch)


def _new_batch(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker in shared memory (as ``default_collate`` does, so that
    sending the batch to the main process copies nothing)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    like = torch.empty(0, dtype=dtype)
    return like.new(like._typed_storage()._new_shared(math.prod(shape))).view(shape)


class ClipDataset(Dataset):
    """Clips of one split for training or the test protocol (see the module docstring)."""

    def __init__(
        self,
        entries: Sequence[VideoEntry],
        dataset_dir: Path,
        *,
        media: str,
        mode: str,
        num_frames: int,
        fps: float = 16.0,
        clips_per_video: int = 1,
        transform=None,
        seed: int = 0,
        frames_fps: float | None = None,
        frame_pattern: str | None = None,
        frame_start: int = 1,
        allow_failures: bool = False,
        normalize: bool = True,
        max_retries: int = 10,
        threads: int = 1,
        reader: VideoReader | None = None,
    ) -> None:
        """
        Args:
            entries: the split's items (paths relative to ``dataset_dir``).
            media: "video" (files decoded with PyAV) or "frames" (JPEG folders).
            mode: "train" (K random clips per video per epoch) or "test" (K uniform clips per video).
            num_frames: T, frames per clip; ``fps``: the timeline rate (16).
            clips_per_video: K.
            transform: train: ``(uint8 [T,C,H,W], torch.Generator) -> float [C,T,H,W]``; test: an object
                with ``spatial`` (uint8 frames -> uint8) and ``finish`` (uint8 clip -> float [C,T,H,W])
                like :class:`TestTransform`, or a plain callable applied per clip. Default: the
                protocol's train/test transform with ImageNet normalisation.
            seed: the run seed (>= 0).
            frames_fps, frame_pattern, frame_start: frame folders' native fps and file names
                (see :class:`~severe.data.decode.FrameFolderReader`).
            allow_failures: test mode: return a marker instead of raising on undecodable videos.
            normalize: with the protocol transform of the mode (:class:`TrainTransform`,
                :class:`TestTransform`), False gives uint8 clips on the 0..255 scale (RGB) with everything but
                the normalisation done; the model normalises them on its device
                (:class:`~severe.models.heads.ClipNormalizer` with ``transform.norm``): a quarter of the memory,
                no float pass in the loader.
            max_retries: train mode: failed draws in a row before giving up.
            threads: decoder threads (1 inside DataLoader workers).
            reader: a decoding backend overriding ``media``'s default.
        """
        if mode not in MODES:
            raise SevereError(f"dataset mode must be one of {MODES}, got {mode!r}")
        if not entries:
            raise SevereError(f"no entries to load from {dataset_dir}")
        if num_frames < 1 or clips_per_video < 1 or not fps > 0:
            raise SevereError(
                f"need num_frames >= 1, clips_per_video >= 1, fps > 0; got {num_frames}, {clips_per_video}, {fps}"
            )
        if int(seed) != seed or seed < 0:
            raise SevereError(f"seed must be a non-negative integer, got {seed!r}")
        self.entries = list(entries)
        self.dataset_dir = Path(dataset_dir)
        self.media = media
        self.mode = mode
        self.num_frames = int(num_frames)
        self.fps = float(fps)
        self.clips_per_video = int(clips_per_video)
        self.train_sampler = RandomClipSampler(self.num_frames, self.fps)
        self.test_sampler = UniformClipSampler(self.clips_per_video, self.num_frames)
        self.transform = transform if transform is not None else (
            TrainTransform() if mode == "train" else TestTransform()
        )
        self.seed = int(seed)
        self.allow_failures = bool(allow_failures)
        self.normalize = bool(normalize)
        if not self.normalize and type(self.transform) is not (TrainTransform if mode == "train" else TestTransform):
            raise SevereError("unnormalised (uint8) clips need the protocol transform of the mode (TrainTransform, "
                              "TestTransform)")
        self.max_retries = int(max_retries)
        self.reader = reader if reader is not None else make_reader(
            media, threads=threads, frames_fps=frames_fps, frame_pattern=frame_pattern, frame_start=frame_start
        )
        self.epoch = 0
        self.failures = FailureLog(len(self.entries))
        self.short_videos = ShortVideoLog(len(self.entries))
        self._warned: set[int] = set()

    # ----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        n = len(self.entries)
        return n * self.clips_per_video if self.mode == "train" else n

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random clips the train items draw (call before each epoch)."""
        if epoch < 0:
            raise SevereError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def failed_keys(self) -> list[str]:
        """Keys of the videos that failed to decode so far (in any worker)."""
        return [self.entries[i].key for i in self.failures.videos()]

    def path(self, entry: VideoEntry) -> Path:
        return self.dataset_dir / entry.path

    @property
    def clip_dtype(self) -> torch.dtype:
        """The clips' dtype: float32 (normalised in the loader) or uint8 (``normalize=False``)."""
        return torch.float32 if self.normalize else torch.uint8

    def _check_index(self, i: int) -> None:
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} outside [0, {len(self)})")

    def __getitem__(self, i: int):
        self._check_index(i)
        return self._train_item(int(i)) if self.mode == "train" else self._test_item(int(i))

    def __getitems__(self, indices: Sequence[int]) -> list:
        """A DataLoader batch: the items of ``indices``; with the protocol transform of the mode a
        :class:`ClipBatch` whose clips were written straight into one batch tensor (same values as the items
        one by one): ``[B, C, T, S, S]`` in train mode, ``[B, K, C, T, S, S]`` in test mode."""
        protocol = TrainTransform if self.mode == "train" else TestTransform
        if type(self.transform) is not protocol \
                or type(self).__getitem__ is not ClipDataset.__getitem__:  # a subclass with its own items
            return [self[i] for i in indices]
        for i in indices:
            self._check_index(i)
        size = self.transform.size
        if self.mode == "train":
            clips = _new_batch((len(indices), 3, self.num_frames, size, size), self.clip_dtype)
            items = [self._train_item(int(i), out=clips[k]) for k, i in enumerate(indices)]
        else:
            clips = _new_batch((len(indices), self.clips_per_video, 3, self.num_frames, size, size), self.clip_dtype)
            items = [self._test_item(int(i), out=clips[k]) for k, i in enumerate(indices)]
        labels = torch.tensor([item[1] for item in items])
        videos = torch.tensor([item[2] for item in items])
        return ClipBatch(items, [clips, labels, videos])

    # ---------------------------------------------------------------------------------- train

    def _train_item(self, i: int, out: torch.Tensor | None = None):
        n = len(self.entries)
        v = i % n
        failed: list[str] = []
        for attempt in range(self.max_retries + 1):
            rng = np.random.default_rng([self.seed, self.epoch, i, attempt])
            try:
                clip = self._train_clip(self.entries[v], rng, v, out)
            except DecodeError as err:
                self._record(v, err, f"training item {i}")
                failed.append(str(self.path(self.entries[v])))
                if n == 1:
                    break
                pick = np.random.default_rng([self.seed, self.epoch, i, attempt, 1])
                j = int(pick.integers(n - 1))
                v = j if j < v else j + 1  # any video but the failing one
                continue
            return clip, self.entries[v].label, v
        raise SevereError(
            f"training item {i}: {len(failed)} undecodable videos in a row ({', '.join(failed[:3])}"
            f"{', ...' if len(failed) > 3 else ''}); check the media files"
        )

    def _train_clip(self, entry: VideoEntry, rng: np.random.Generator, v: int | None = None,
                    out: torch.Tensor | None = None) -> torch.Tensor:
        """One clip through the transform; with ``out`` (the protocol transform only) written there."""
        with self.reader.open(self.path(entry)) as h:
            indices = self._train_indices(entry, h.info, rng)
            g = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
            if type(self.transform) is TrainTransform and isinstance(h, VideoHandle) and h.info.width > 0:
                # the protocol transform (not a subclass): draw the crop from the header's frame size and
                # read only the crop box of each frame (same draws and result as transforming full frames)
                p = self.transform.sample(h.info.height, h.info.width, g)
                c = p.crop
                # the clip's crop boxes go into a reused buffer: the resize reads it, then it is free again
                frames = h.read(indices, box=(c.top, c.left, c.height, c.width),
                                buffer=lambda shape: scratch("train_frames", shape))
                if v is not None:
                    self._note_short(v, entry, h)
                return self.transform.apply(torch.from_numpy(frames).permute(0, 3, 1, 2), p, cropped=True, out=out,
                                            normalize=self.normalize)
            frames = h.read(indices)
            if v is not None:
                self._note_short(v, entry, h)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2)  # channels-last view, no copy
        if out is not None or not self.normalize:  # the protocol transform on frames it cannot crop while reading
            p = self.transform.sample(video.shape[-2], video.shape[-1], g)  # (the draws of __call__)
            return self.transform.apply(video, p, out=out, normalize=self.normalize)
        return self.transform(video, g)

    def _train_indices(self, entry: VideoEntry, info: VideoInfo, rng: np.random.Generator) -> list[int]:
        if entry.start_sec is None and entry.end_sec is None:
            return self.train_sampler(rng, info.fps, info.num_frames, info.duration)
        return self.train_sampler.segment(rng, info.fps, *_segment(entry, info))

    def _note_short(self, v: int, entry: VideoEntry, h: VideoHandle) -> None:
        """Count video ``v`` in :attr:`short_videos` when what was decoded makes it a short video."""
        if getattr(h, "truncated_from", None) is not None:
            self.short_videos.mark(v, "truncated")
        if h.info.num_frames == 1:
            self.short_videos.mark(v, "one_frame")
        if entry.start_sec is None and entry.end_sec is None and h.info.num_frames >= 1 and h.info.fps > 0 \
                and timeline_length(h.info.num_frames, h.info.fps, self.fps) < self.num_frames:
            self.short_videos.mark(v, "shorter_than_clip")

    def _record(self, v: int, err: Exception, what: str) -> None:
        self.failures.record(v)
        level = logging.DEBUG if v in self._warned else logging.WARNING
        self._warned.add(v)
        log.log(level, "%s: skipping undecodable video %s (%s)", what, self.entries[v].key, err)

    # ----------------------------------------------------------------------------------- test

    def _test_item(self, i: int, out: torch.Tensor | None = None):
        """The K test clips of video ``i``; with ``out`` (``[K, C, T, S, S]``, the protocol transform only)
        written there."""
        entry = self.entries[i]
        try:
            clips = self._test_clips(entry, i, out)
        except DecodeError as err:
            if not self.allow_failures:
                raise SevereError(
                    f"cannot decode test video {self.path(entry)} ({err}); the test split must be complete: "
                    "repair or re-download it, or add DATA.ALLOW_TEST_FAILURES True to the command (KEY VALUE; "
                    "also after training: severe run test RUN_DIR DATA.ALLOW_TEST_FAILURES True) to skip and "
                    "report it"
                ) from None
            self._record(i, err, f"test item {i}")
            if out is not None:
                return out.zero_(), FAILED_LABEL, i
            size = int(getattr(self.transform, "size", 112))
            return torch.zeros(self.clips_per_video, 3, self.num_frames, size, size, dtype=self.clip_dtype), \
                FAILED_LABEL, i
        return clips, entry.label, i

    def _test_plan(self, entry: VideoEntry, info: VideoInfo) -> list[list[int]]:
        """Source frame of every frame of the K test clips."""
        if entry.start_sec is None and entry.end_sec is None:
            timeline = timeline_frames(info.num_frames, info.fps, self.fps)
            pad = "loop"
        else:
            seg_start, _, lo, hi = _segment(entry, info)
            timeline = timeline_frames(hi, info.fps, self.fps, start_sec=seg_start) or [hi - 1]
            timeline = [max(lo, j) for j in timeline]
            pad = "clamp"
        return [[timeline[p] for p in clip] for clip in self.test_sampler(len(timeline), pad)]

    def _test_clips(self, entry: VideoEntry, v: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        spatial = getattr(self.transform, "spatial", None)
        finish = getattr(self.transform, "finish", self.transform)
        with self.reader.open(self.path(entry)) as h:
            estimate = h.info
            plan = self._test_plan(entry, estimate)
            whole = entry.start_sec is None and entry.end_sec is None
            got = _read_frames(h, sorted({j for clip in plan for j in clip}), spatial,
                               to_end=whole and not estimate.exact)
            if h.info.num_frames != estimate.num_frames:  # the header was wrong: plan on the real count
                plan = self._test_plan(entry, h.info)
                missing = sorted({j for clip in plan for j in clip} - got.keys())
                if missing:
                    got.update(_read_frames(h, missing, spatial, to_end=False))
            if v is not None and got:
                self._note_short(v, entry, h)
        if not got:
            raise DecodeError(f"{self.path(entry)}: no decodable video frame")
        have = sorted(got)
        clips = []
        for k, clip in enumerate(plan):
            frames = torch.stack([got[j] if j in got else got[_at_or_below(have, j)] for j in clip])
            if out is None and self.normalize:
                clips.append(finish(frames))  # any transform
            else:  # the protocol TestTransform
                clips.append(finish(frames, out=None if out is None else out[k], normalize=self.normalize))
        return torch.stack(clips) if out is None else out


def _segment(entry: VideoEntry, info: VideoInfo) -> tuple[float, float, int, int]:
    """(start s, end s, first frame, end frame exclusive) of an entry's segment, inside the video."""
    seg_start = max(entry.start_sec or 0.0, 0.0)
    seg_end = info.duration if entry.end_sec is None else min(entry.end_sec, info.duration)
    seg_end = max(seg_end, seg_start)
    lo, hi = segment_frames(seg_start, seg_end, info.fps, info.num_frames)
    return seg_start, seg_end, lo, hi


def _read_frames(h: VideoHandle, indices: list[int], spatial, to_end: bool) -> dict[int, torch.Tensor]:
    """Decode ``indices`` once, shrinking them with ``spatial`` in chunks as they arrive."""
    out: dict[int, torch.Tensor] = {}
    idx: list[int] = []
    buf: list[np.ndarray] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack(buf)).permute(0, 3, 1, 2)
        if spatial is not None:
            x = spatial(x)
        for k, j in enumerate(idx):
            out[j] = x[k]
        idx.clear()
        buf.clear()

    for j, frame in h.iter_frames(indices, to_end=to_end):
        idx.append(j)
        buf.append(frame)
        if len(buf) == _CHUNK:
            flush()
    if buf:
        flush()
    return out


def _at_or_below(sorted_keys: list[int], j: int) -> int:
    """The largest key <= j (the first key if none): frames past a video's real end repeat its last."""
    k = bisect.bisect_right(sorted_keys, j) - 1
    return sorted_keys[max(k, 0)]

