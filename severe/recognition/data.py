"""Recognition data for one run: official lists -> subset -> media check -> datasets."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from torch.utils.data import Dataset

from severe.data.dataset import FAILED_LABEL, ClipDataset
from severe.data.decode import info as video_info
from severe.data.entries import VideoEntry
from severe.data.manifest import check_media, locate_media, manifest_sha256
from severe.data.registry import dataset_dir, get_dataset, manifest_lines, read_split
from severe.data.subsets import select_subset, split_validation, write_subset_list
from severe.data.transforms import Normalization, TestTransform, TrainTransform
from severe.errors import SevereError
from severe.io import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """The entries a run uses from one split, and what was excluded."""

    entries: list[VideoEntry]
    missing: list[VideoEntry]
    official_entries: int
    sha256: str  # manifest hash of the split as used (subset applied, before excluding missing media)

    def record(self) -> dict:
        return {"official_entries": self.official_entries, "used": len(self.entries), "missing": len(self.missing),
                "sha256": self.sha256}


def prepare_split(dataset_id: str, data_root: Path, split: str, *, num_examples: int, seed: int,
                  allow_missing: bool, run_dir: Path | None) -> SplitData:
    """Read the official list, draw the N-example subset (train), check media, write the lists used."""
    spec = get_dataset(dataset_id)
    if not spec.single_label:
        raise SevereError(f"{dataset_id} is not a single-label classification dataset; use its own task runner")
    entries = read_split(dataset_id, data_root, split)
    official = len(entries)
    if num_examples and split == "train":
        entries = select_subset(entries, num_examples, seed)
    sha = manifest_sha256(manifest_lines(dataset_id, data_root, split, entries))
    present, missing = check_media(dataset_id, data_root, entries, allow_missing)
    present = [_with_located_media(dataset_id, data_root, e) for e in present]
    if run_dir is not None:
        if num_examples and split == "train":
            write_subset_list(entries, run_dir / f"{split}_subset.txt",
                              comment=f"{dataset_id} {num_examples}-example subset, seed {seed}")
        if missing:
            atomic_write_text(run_dir / f"{split}_missing.txt", "".join(f"{e.key}\n" for e in missing))
            log.warning("%s %s: %d of %d media missing and excluded (listed in %s_missing.txt)",
                        dataset_id, split, len(missing), len(entries), split)
    return SplitData(present, missing, official, sha)


def carve_validation(dataset_id: str, data_root: Path, train: SplitData, *, fraction: float, seed: int,
                     run_dir: Path | None) -> tuple[SplitData, SplitData]:
    """Hold out ``fraction`` of each class's usable training entries as a validation split (written to
    ``val_split.txt``); returns (train, val) with their own manifest hashes."""
    kept, val = split_validation(train.entries, fraction, seed)
    if run_dir is not None:
        write_subset_list(val, Path(run_dir) / "val_split.txt",
                          comment=f"{dataset_id} validation split: {fraction} of each class's training entries, seed {seed}")
    log.info("%s: %d training videos held out for validation, %d left for training", dataset_id, len(val), len(kept))
    sha = lambda entries: manifest_sha256(manifest_lines(dataset_id, data_root, "train", entries))  # noqa: E731
    return (SplitData(kept, train.missing, train.official_entries, sha(kept + train.missing)),
            SplitData(val, [], len(train.entries), sha(val)))


def _with_located_media(dataset_id: str, data_root: Path, entry: VideoEntry) -> VideoEntry:
    """Point the entry at the media actually found (e.g. SSv2 .webm instead of .avi)."""
    found = locate_media(dataset_id, data_root, entry)
    spec = get_dataset(dataset_id)
    if found is None:
        return entry
    path, media = found
    if media != spec.media:
        raise SevereError(f"{dataset_id}: {entry.key} is only present as {media} ({path}); recognition runs read "
                          f"{spec.media} media for this dataset")
    rel = path.relative_to(dataset_dir(data_root, dataset_id)).as_posix()
    return entry if rel == entry.path else dataclasses.replace(entry, path=rel)


def clip_dataset(dataset_id: str, data_root: Path, entries: list[VideoEntry], *, mode: str, num_frames: int,
                 fps: float, clips: int, crop: int, test_resize: int, norm: Normalization, seed: int,
                 allow_failures: bool = False, crop_scale: tuple[float, float] = (0.08, 1.0),
                 color_jitter: bool = True, short_side: tuple[int, int] | None = None,
                 normalize: bool = True) -> ClipDataset:
    spec = get_dataset(dataset_id)
    jitter = (0.4, 0.4, 0.4, 0.2) if color_jitter else None
    if mode == "train":
        transform = TrainTransform(size=crop, scale=tuple(crop_scale), jitter=jitter, norm=norm, short_side=short_side)
    else:
        transform = TestTransform(resize=test_resize, crop=crop, norm=norm)
    return ClipDataset(entries, dataset_dir(data_root, dataset_id), media=spec.media, mode=mode,
                       num_frames=num_frames, fps=fps, clips_per_video=clips, transform=transform, seed=seed,
                       frames_fps=spec.frames_fps, frame_pattern=spec.frame_pattern, allow_failures=allow_failures,
                       normalize=normalize)


class ArrowOfTime(Dataset):
    """Forward (label 0) vs time-reversed (label 1) clips of a recognition dataset (docs/tasks.md §4).

    train: item i is the base item i, reversed when a draw from (seed, epoch, i) says so (p = 0.5).
    test: 2N items; item 2v is video v forward, 2v + 1 the same clips reversed. Reversal flips the time
    axis of the augmented clip: the spatial augmentation is identical for all frames of a clip, so this
    equals reversing before augmentation, and both classes share the same spatial processing.
    """

    def __init__(self, base: ClipDataset, seed: int) -> None:
        self.base, self.seed, self.epoch = base, seed, 0
        self.failures = base.failures

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.base.set_epoch(epoch)

    def failed_keys(self) -> list[str]:
        return self.base.failed_keys()

    def __len__(self) -> int:
        return len(self.base) * (2 if self.base.mode == "test" else 1)

    def __getitem__(self, i: int):
        if self.base.mode == "test":
            clips, label, _ = self.base[i // 2]
            reverse = bool(i % 2)
            time_dim = 2  # [K, C, T, H, W]
        else:
            clips, label, _ = self.base[i]
            reverse = bool(np.random.default_rng([self.seed, self.epoch, i, 7]).random() < 0.5)
            time_dim = 1  # [C, T, H, W]
        if label == FAILED_LABEL:
            return clips, FAILED_LABEL, i
        return (clips.flip(time_dim) if reverse else clips), int(reverse), i


def drop_short_videos(ds: ClipDataset, min_seconds: float) -> tuple[list[VideoEntry], int]:
    """Entries at least ``min_seconds`` long (arrow of time: loop padding would reveal the direction)."""
    kept = [e for e in ds.entries if video_info(ds.reader, ds.path(e)).duration >= min_seconds]
    return kept, len(ds.entries) - len(kept)


def collect_failures(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop marker items of undecodable test videos (allowed failures); returns (values, labels, count)."""
    ok = labels != FAILED_LABEL
    return values[ok], labels[ok], int((~ok).sum())


