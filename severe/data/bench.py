"""Data-loading benchmark of the training pipeline (``severe data bench``).

Runs exactly what training runs per item (decode, 32 frames on the 16 fps timeline, RandomResizedCrop /
flip / colour jitter to uint8 ``C x 32 x 112 x 112`` batches, which the model normalises on its device)
through a DataLoader with W workers over the train split, and reports clips per second. :func:`run_bench`
resolves a dataset of the registry; :func:`bench_entries` takes entries directly.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from severe.data.dataset import ClipDataset, collate_clips
from severe.data.entries import VideoEntry
from severe.errors import SevereError

__all__ = ["run_bench", "bench_entries"]

def bench_entries(
    entries: Sequence[VideoEntry],
    dataset_dir: Path,
    media: str,
    clips: int,
    workers: int,
    seed: int = 0,
    *,
    num_frames: int = 32,
    fps: float = 16.0,
    batch_size: int = 8,
    frames_fps: float | None = None,
    frame_pattern: str | None = None,
    progress: bool = True,
) -> dict:
    """Time ``clips`` training clips drawn (seeded) from ``entries`` through a ``workers``-worker loader.

    Returns ``{"clips_per_s", "clips", "workers", "seconds", "decoder", "first_batch_s",
    "steady_clips_per_s", "num_frames", "fps", "batch_size", "failures"}``; ``steady_clips_per_s``
    excludes the first batch (worker start-up).
    """
    if clips < 1 or workers < 0 or batch_size < 1:
        raise SevereError(f"bench needs clips >= 1, workers >= 0, batch >= 1; got {clips}, {workers}, {batch_size}")
    ds = ClipDataset(
        entries, dataset_dir, media=media, mode="train", num_frames=num_frames, fps=fps,
        clips_per_video=1, seed=seed, frames_fps=frames_fps, frame_pattern=frame_pattern, normalize=False,
    )
    order = np.random.default_rng(seed).permutation(len(ds))
    picks = [int(order[k % len(ds)]) for k in range(clips)]
    loader = DataLoader(Subset(ds, picks), batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate_clips)  # as the recognition training loader
    # like a DataLoader worker: one core per pipeline (safe here: this is the parent process; never
    # call cv2.setNumThreads in a forked worker, it deadlocks when the parent used OpenCV's pool)
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    bar = _progress(clips, progress)
    n = 0
    first = None
    try:
        t0 = time.perf_counter()
        for clip, _, _ in loader:
            if first is None:
                first = time.perf_counter() - t0
            n += clip.shape[0]
            bar.update(clip.shape[0])
        seconds = time.perf_counter() - t0
    finally:
        bar.close()
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    first = first or seconds
    rest = n - min(batch_size, n)
    steady = rest / (seconds - first) if rest and seconds > first else n / seconds
    return {
        "clips_per_s": n / seconds,
        "clips": n,
        "workers": workers,
        "seconds": seconds,
        "decoder": ds.reader.name,
        "first_batch_s": first,
        "steady_clips_per_s": steady,
        "num_frames": num_frames,
        "fps": fps,
        "batch_size": batch_size,
        "failures": ds.failures.count,
    }


def run_bench(dataset_id: str, data_root: Path, clips: int, workers: int, seed: int = 0) -> dict:
    """:func:`bench_entries` over the train split of ``dataset_id`` under ``data_root``."""
    from severe.data import registry

    spec = registry.get_dataset(dataset_id)
    entries = registry.read_split(dataset_id, Path(data_root), "train")
    out = bench_entries(
        entries, registry.dataset_dir(Path(data_root), dataset_id), spec.media, clips, workers, seed,
        frames_fps=spec.frames_fps, frame_pattern=spec.frame_pattern,
    )
    out["dataset"] = dataset_id
    return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", file=sys.stderr, disable=not enabled, leave=False)
