"""Data-loading benchmark on UCF-like videos: our loaders vs the original approach and the decoder's limit.

Writes N synthetic UCF101-like videos (320x240, 25 fps, MPEG-4 part 2 in .avi, 7 s, textured moving
content) and JPEG frame folders of some of them (q95) to a temporary folder, then measures on ONE core
(the process is pinned to one CPU; torch, OpenCV and PyAV single-threaded):

  decode limit   PyAV seek + decode (no colour conversion) of exactly the frames each training clip
                 needs (from the keyframe before the first to the last): the raw-decode ceiling;
  ours           the training pipeline (ClipDataset, train mode: 32 frames at 16 fps, random resized
                 crop / flip / colour jitter to uint8 3x32x112x112 batches, which the model normalises on
                 its device; DataLoader workers=0, batch 8, collate_clips: clips written straight into the
                 batch, as the recognition training loader);
  ours, float    the same with the normalisation in the loader (float 3x32x112x112 batches: the loader of
                 recipes that mix clips, MixUp / CutMix);
  original       the original approach (benchmarks/original_pipeline.py: PyAV to PIL images from the
                 window start, PIL crop/flip/jitter per frame, to_tensor, normalise);
  dense test     the test protocol (10 clips of 32 frames per video from one decode, resize 128, centre
                 crop 112; uint8 batches written straight into the batch, as the evaluation loader);
                 counted in clips;
  frame folders  the training pipeline reading JPEG frame folders (the AVA / Charades media).

The methods run interleaved in rounds so that they share the machine's load; rates are clips per
CPU-second of the process (robust on a shared machine) with wall-clock clips/s alongside. Then
DataLoader worker scaling (1, 2 and all cores, steady clips/s, wall clock).

    python benchmarks/bench_data_loading.py [--videos 24] [--clips 80] [--rounds 4] [--json]
    python benchmarks/bench_data_loading.py --plot media/loading_speed.png   # the README figure
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from original_pipeline import OriginalClips  # noqa: E402

from severe.data.bench import bench_entries  # noqa: E402
from severe.data.dataset import ClipDataset, collate_clips  # noqa: E402
from severe.data.decode import PyAVReader  # noqa: E402
from severe.data.entries import VideoEntry  # noqa: E402
from severe.data.sampling import random_start, timeline_indices  # noqa: E402

FRAME_PATTERN = "image_{:05d}.jpg"


def write_ucf_like(path: Path, seed: int, seconds: float = 7.0, fps: int = 25, gop: int = 12) -> None:
    """A 320x240 MPEG-4 .avi: a scrolling random texture with a moving, changing block."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    tex = rng.integers(0, 256, (2 * h, 2 * w, 3), dtype=np.uint8).astype(np.int32)
    tex = ((tex + np.roll(tex, 1, 0) + np.roll(tex, 1, 1) + np.roll(tex, (1, 1), (0, 1))) // 4).astype(np.uint8)
    vy, vx = rng.integers(1, 4, 2)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.bit_rate = 800_000
        s.codec_context.gop_size = gop
        for i in range(int(round(seconds * fps))):
            dy, dx = (i * vy) % h, (i * vx) % w
            img = tex[dy : dy + h, dx : dx + w].copy()
            y0 = 60 + int(40 * math.sin(i / 9 + seed))
            x0 = (i * 4 + 30 * seed) % (w - 48)
            img[y0 : y0 + 48, x0 : x0 + 48] = (i * 5 + 40 * seed) % 256
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def write_frame_folder(video: Path, folder: Path) -> None:
    """Every frame of ``video`` as ``image_00001.jpg``... (JPEG quality 95)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(PyAVReader().read_all(video)):
        Image.fromarray(frame).save(folder / FRAME_PATTERN.format(k + 1), quality=95)


def clip_plans(paths: list[Path], clips: int, seed: int) -> list[tuple[Path, list[int]]]:
    """(video, source frames) of ``clips`` training clips (32 frames at 16 fps, random start)."""
    rng = np.random.default_rng(seed)
    plans = []
    for k in range(clips):
        p = paths[k % len(paths)]
        info = PyAVReader().info(p)
        start = random_start(info.duration, 2.0, rng)
        plans.append((p, timeline_indices(start, 32, 16, info.fps, info.num_frames)))
    return plans


def decode_only(path: Path, indices: list[int]) -> int:
    """Seek to the keyframe before the first needed frame and decode up to the last one, no conversion."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.codec_context.thread_count = 1
        fps, tb = float(st.average_rate), float(st.time_base)
        first, last = min(indices), max(indices)
        if first > 0:
            c.seek(int(first / fps / tb), stream=st, backward=True)
        n = 0
        for f in c.decode(st):
            n += 1
            if f.pts is not None and int(round(f.pts * tb * fps)) >= last:
                break
    return n


def opencv_clip(path: Path, indices: list[int]) -> np.ndarray:
    """OpenCV seek + grab/read of the needed frames (the alternative decoder), RGB."""
    need = sorted(set(indices))
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    cap.set(cv2.CAP_PROP_POS_FRAMES, need[0])
    pos, got = need[0], {}
    for i in need:
        while pos < i:
            cap.grab()
            pos += 1
        ok, frame = cap.read()
        pos += 1
        if not ok:
            raise RuntimeError(f"{path}: OpenCV could not read frame {i}")
        got[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    cap.release()
    return np.stack([got[i] for i in indices])


class Meter:
    """Clips, CPU seconds, wall seconds and minor page faults accumulated over the rounds of one method."""

    def __init__(self) -> None:
        self.clips = 0
        self.cpu = 0.0
        self.wall = 0.0
        self.faults = 0

    def run(self, fn: Callable[[], int]) -> None:
        f0, c0, t0 = _minor_faults(), time.process_time(), time.perf_counter()
        self.clips += fn()
        self.cpu += time.process_time() - c0
        self.wall += time.perf_counter() - t0
        self.faults += _minor_faults() - f0

    def rates(self) -> dict:
        return {"clips": self.clips, "clips_per_cpu_s": self.clips / self.cpu, "clips_per_s": self.clips / self.wall,
                "page_faults_per_clip": self.faults / self.clips}


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def loader_chunk(dataset, picks: list[int], clips_per_item: int = 1, collate_fn=None) -> Callable[[], int]:
    """Iterate ``picks`` of ``dataset`` through a workers=0 DataLoader (batch 8, default collate unless
    ``collate_fn``)."""

    def run() -> int:
        n = 0
        for batch in DataLoader(Subset(dataset, picks), batch_size=8 if clips_per_item == 1 else 1, num_workers=0,
                                collate_fn=collate_fn):
            n += batch[0].shape[0] * clips_per_item
        return n

    return run


def chunks(items: list, rounds: int) -> list[list]:
    return [items[r::rounds] for r in range(rounds)]


def pin_to_one_core() -> set[int] | None:
    """Pin this process to one CPU (returns the previous affinity, None where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(before)})
    return before


def single_core_rates(paths: list[Path], folder: Path, frame_dirs: list[str], args) -> dict:
    entries = [VideoEntry(p.name, k % 5, p.name) for k, p in enumerate(paths)]
    ours = ClipDataset(entries, folder, media="video", mode="train", num_frames=32, fps=16.0, seed=args.seed,
                       normalize=False)
    ours_float = ClipDataset(entries, folder, media="video", mode="train", num_frames=32, fps=16.0, seed=args.seed)
    dense = ClipDataset(entries, folder, media="video", mode="test", num_frames=32, fps=16.0,
                        clips_per_video=10, seed=args.seed, normalize=False)
    frames = ClipDataset([VideoEntry(d, k % 5, d) for k, d in enumerate(frame_dirs)], folder, media="frames",
                         mode="train", num_frames=32, fps=16.0, seed=args.seed, frames_fps=25.0,
                         frame_pattern=FRAME_PATTERN, normalize=False)
    original = OriginalClips(paths, seed=args.seed)
    order = np.random.default_rng(args.seed).permutation(len(paths))
    picks = [int(order[k % len(paths)]) for k in range(args.clips)]
    frame_picks = [k % len(frame_dirs) for k in range(args.clips)]
    plans = clip_plans(paths, args.clips, args.seed)
    methods: dict[str, list[Callable[[], int]]] = {
        "decode_limit": [lambda c=c: sum(decode_only(p, i) > 0 for p, i in c) for c in chunks(plans, args.rounds)],
        "ours": [loader_chunk(ours, c, collate_fn=collate_clips) for c in chunks(picks, args.rounds)],
        "ours_float": [loader_chunk(ours_float, c, collate_fn=collate_clips) for c in chunks(picks, args.rounds)],
        "original": [loader_chunk(original, c) for c in chunks(picks, args.rounds)],
        "dense_test": [loader_chunk(dense, c, 10, collate_fn=collate_clips) for c in chunks(list(range(len(paths))), args.rounds)],
        "frame_folders": [loader_chunk(frames, c, collate_fn=collate_clips) for c in chunks(frame_picks, args.rounds)],
    }
    loader_chunk(ours, picks[:2], collate_fn=collate_clips)()  # warm-up: lazy imports, first opens, allocator
    loader_chunk(original, picks[:1])()
    meters = {m: Meter() for m in methods}
    names = list(methods)
    for r in range(args.rounds):
        for m in names[r % len(names):] + names[: r % len(names)]:  # rotate the order every round
            meters[m].run(methods[m][r])
            print(f"  round {r + 1}/{args.rounds} {m}: {meters[m].rates()['clips_per_cpu_s']:.1f} clips/CPU-s",
                  file=sys.stderr)
    return {m: meters[m].rates() for m in names}


def decoder_choice(plans: list[tuple[Path, list[int]]]) -> dict:
    """Clip decoding + RGB only, PyAV (our reader, full frames) vs OpenCV, clips per CPU-second; frames compared."""
    reader = PyAVReader()
    same = all(np.array_equal(reader.read(p, i), opencv_clip(p, i)) for p, i in plans[:3])
    out = {"opencv_frames_equal_pyav": same}
    for name, fn in (("pyav", reader.read), ("opencv", opencv_clip)):
        m = Meter()
        m.run(lambda fn=fn: sum(fn(p, i).shape[0] > 0 for p, i in plans))
        out[f"{name}_clip_decode_rgb_per_cpu_s"] = m.rates()["clips_per_cpu_s"]
    return out


def worker_scaling(paths: list[Path], folder: Path, clips: int, seed: int) -> dict:
    entries = [VideoEntry(p.name, k % 5, p.name) for k, p in enumerate(paths)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    out = {}
    for w in sorted({1, 2, cores}):
        r = bench_entries(entries, folder, "video", clips, w, seed, progress=False)
        out[str(w)] = {"steady_clips_per_s": r["steady_clips_per_s"], "clips_per_s": r["clips_per_s"]}
    return {"cores": cores, "workers": out}


def plot(res: dict, path: Path) -> None:
    """Bar chart of clips per core-second (the README figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("original\napproach", "original", "#b0b0b0"), ("ours\n(training)", "ours", "#1f77b4"),
            ("ours, float\nbatches", "ours_float", "#6baed6"), ("decode\nlimit", "decode_limit", "#7f7f7f"), ("ours, dense\ntest (10 clips)", "dense_test", "#2ca02c"),
            ("ours, JPEG\nframe folders", "frame_folders", "#9467bd")]
    values = [res["single_core"][key]["clips_per_cpu_s"] for _, key, _ in rows]
    fig, ax = plt.subplots(figsize=(8.0, 3.6), dpi=100)
    bars = ax.bar([r[0] for r in rows], values, color=[r[2] for r in rows])
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.0f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("clips per core-second")
    ax.set_title(f"32-frame 112x112 clips from UCF-like .avi (JPEG folders: q95) on one core\n"
                 f"ours = {res['ratio_ours_over_original']:.1f}x the original approach, "
                 f"{100 * res['fraction_of_decode_limit']:.0f}% of the decode limit "
                 f"(load average {res['load_average_before']:.1f})", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(0, max(values) * 1.15)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=24, help="number of synthetic videos (default 24)")
    ap.add_argument("--frame-videos", type=int, default=6, help="videos also written as JPEG folders (default 6)")
    ap.add_argument("--clips", type=int, default=80, help="training clips per method (default 80)")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    ap.add_argument("--worker-clips", type=int, default=160, help="clips per worker-scaling row (0 = skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="write the media here instead of a temp dir")
    ap.add_argument("--plot", type=Path, default=None, help="write a bar chart (PNG) of the clip rates here")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"v_Synth_g{k // 4 + 1:02d}_c{k % 4 + 1:02d}.avi" for k in range(args.videos)]
        paths = [folder / n for n in names]
        for k, p in enumerate(paths):
            if not p.exists():
                write_ucf_like(p, seed=k)
        frame_dirs = [f"frames_{p.stem}" for p in paths[: args.frame_videos]]
        for p, d in zip(paths, frame_dirs):
            if not (folder / d).is_dir():
                write_frame_folder(p, folder / d)

        res: dict = {"videos": args.videos, "clips": args.clips, "rounds": args.rounds,
                     "format": "320x240 25 fps MPEG-4 .avi, 7 s (frame folders: JPEG q95)",
                     "clip": "32 frames at 16 fps -> float 3x32x112x112",
                     "load_average_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        affinity = pin_to_one_core()
        try:
            res["single_core"] = single_core_rates(paths, folder, frame_dirs, args)
            res.update(decoder_choice(clip_plans(paths, min(args.clips, 40), args.seed + 1)))
        finally:
            if affinity is not None:
                os.sched_setaffinity(0, affinity)
        sc = res["single_core"]
        res["ratio_ours_over_original"] = sc["ours"]["clips_per_cpu_s"] / sc["original"]["clips_per_cpu_s"]
        res["fraction_of_decode_limit"] = sc["ours"]["clips_per_cpu_s"] / sc["decode_limit"]["clips_per_cpu_s"]
        if args.worker_clips > 0:
            res["worker_scaling"] = worker_scaling(paths, folder, args.worker_clips, args.seed)
        res["load_average_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    if args.plot is not None:
        plot(res, args.plot)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{args.videos} videos, {res['format']}; {res['clip']}; one core, {args.rounds} interleaved rounds; "
          f"load average {res['load_average_before']:.1f} -> {res['load_average_after']:.1f}")
    print(f"{'':34s} {'clips/CPU-s':>11s} {'clips/s':>9s} {'faults/clip':>11s}")
    labels = {"decode_limit": "decode limit (PyAV, no RGB)", "ours": "ours, training pipeline",
              "ours_float": "ours, float batches (normalised)",
              "original": "original approach (PIL)", "dense_test": "ours, dense test (10 clips/video)",
              "frame_folders": "ours, training from JPEG folders"}
    for key, label in labels.items():
        print(f"{label:34s} {sc[key]['clips_per_cpu_s']:11.1f} {sc[key]['clips_per_s']:9.1f} "
              f"{sc[key]['page_faults_per_clip']:11.0f}")
    print(f"ours / original: {res['ratio_ours_over_original']:.1f}x; ours / decode limit: "
          f"{100 * res['fraction_of_decode_limit']:.0f}%")
    print(f"clip decode + RGB (full frames), clips/CPU-s: PyAV {res['pyav_clip_decode_rgb_per_cpu_s']:.1f}, "
          f"OpenCV {res['opencv_clip_decode_rgb_per_cpu_s']:.1f} (same frames: {res['opencv_frames_equal_pyav']})")
    if "worker_scaling" in res:
        ws = res["worker_scaling"]
        print(f"DataLoader workers ({ws['cores']} cores), steady clips/s: " +
              ", ".join(f"{w}: {v['steady_clips_per_s']:.1f}" for w, v in ws["workers"].items()))
    if args.plot is not None:
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
