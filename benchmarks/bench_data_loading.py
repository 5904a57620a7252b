"""Data-loading benchmark on UCF-like videos: our training pipeline vs the original approach.

Writes N synthetic UCF101-like videos (320x240, 25 fps, MPEG-4 part 2 in .avi, ~7 s, textured moving
content) to a temporary folder and measures, on one core:

  (a) the raw decode limit of the chosen decoder (PyAV): frames/s of a full decode, without and with
      RGB conversion; plus the decoder choice: clips/s of clip decoding (32 frames at 16 fps) with
      PyAV (seek + single-threaded conversion of the kept frames) vs OpenCV (seek + grab/read);
  (b) our training pipeline (decode + sample + augment to float C x 32 x 112 x 112), workers=0;
  (c) the original pipeline's approach (benchmarks/original_pipeline.py): PyAV to PIL images from the
      window start, PIL crop/flip/jitter per frame, to_tensor, normalise;
  (d) the ratio (b)/(c) (requirement: >= 3), and optionally (b) with W DataLoader workers.

    python benchmarks/bench_data_loading.py [--videos 24] [--clips 120] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from original_pipeline import OriginalClips  # noqa: E402

from severe.data.bench import bench_entries  # noqa: E402
from severe.data.decode import PyAVReader  # noqa: E402
from severe.data.entries import VideoEntry  # noqa: E402
from severe.data.sampling import random_start, timeline_indices  # noqa: E402


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


def decode_limit(paths: list[Path]) -> dict:
    """Full-decode frames/s on one thread: decode only, and decode + RGB conversion (our reader)."""
    frames = 0
    t0 = time.perf_counter()
    for p in paths:
        with av.open(str(p)) as c:
            st = c.streams.video[0]
            st.codec_context.thread_count = 1
            for _ in c.decode(st):
                frames += 1
    decode_only = frames / (time.perf_counter() - t0)
    reader = PyAVReader()
    frames = 0
    t0 = time.perf_counter()
    for p in paths:
        with reader.open(p) as h:
            frames += len(h.read_all())
    with_rgb = frames / (time.perf_counter() - t0)
    cv_frames = 0
    t0 = time.perf_counter()
    for p in paths:
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        while cap.grab():
            cv_frames += 1
        cap.release()
    cv_decode_only = cv_frames / (time.perf_counter() - t0)
    return {"pyav_decode_fps": decode_only, "pyav_decode_rgb_fps": with_rgb, "opencv_decode_fps": cv_decode_only}


def clip_plans(paths: list[Path], clips: int, seed: int) -> list[tuple[Path, list[int]]]:
    rng = np.random.default_rng(seed)
    plans = []
    for k in range(clips):
        p = paths[k % len(paths)]
        with PyAVReader().open(p) as h:
            info = h.info
        start = random_start(info.duration, 2.0, rng)
        plans.append((p, timeline_indices(start, 32, 16, info.fps, info.num_frames)))
    return plans


def opencv_clip(path: Path, indices: list[int]) -> np.ndarray:
    """OpenCV seek + grab/read of the needed frames (the alternative decoder)."""
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


def decoder_choice(plans: list[tuple[Path, list[int]]]) -> dict:
    """Clips/s of clip decoding only: PyAV (our reader) vs OpenCV; also checks they agree."""
    reader = PyAVReader()
    for p, idx in plans[:3]:
        a, b = reader.open(p).read(idx), opencv_clip(p, idx)
        if not np.array_equal(a, b):
            print(f"note: PyAV and OpenCV frames differ on {p.name} (max {np.abs(a.astype(int) - b).max()})",
                  file=sys.stderr)
    out = {}
    for name, fn in (("pyav", lambda p, i: reader.open(p).read(i)), ("opencv", opencv_clip)):
        t0 = time.perf_counter()
        for p, idx in plans:
            fn(p, idx)
        out[f"{name}_clip_decode_per_s"] = len(plans) / (time.perf_counter() - t0)
    return out


def time_loader(dataset, clips: int, workers: int, seed: int, batch_size: int = 8) -> float:
    order = np.random.default_rng(seed).permutation(len(dataset))
    picks = [int(order[k % len(dataset)]) for k in range(clips)]
    loader = DataLoader(Subset(dataset, picks), batch_size=batch_size, num_workers=workers)
    n = 0
    t0 = time.perf_counter()
    for clip, _, _ in loader:
        n += clip.shape[0]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=24, help="number of synthetic videos (default 24)")
    ap.add_argument("--clips", type=int, default=120, help="clips per measurement (default 120)")
    ap.add_argument("--workers", type=int, default=2, help="extra row with W workers (0 = skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="write the videos here instead of a temp dir")
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
        entries = [VideoEntry(n, k % 5, n) for k, n in enumerate(names)]

        res: dict = {"videos": args.videos, "clips": args.clips, "format": "320x240 25 fps MPEG-4 .avi, 7 s",
                     "clip": "32 frames at 16 fps -> float 3x32x112x112"}
        res.update(decode_limit(paths))
        res.update(decoder_choice(clip_plans(paths, min(args.clips, 60), args.seed)))
        ours = bench_entries(entries, folder, "video", args.clips, 0, args.seed, progress=False)
        res["ours_clips_per_s"] = ours["clips_per_s"]
        res["original_clips_per_s"] = time_loader(OriginalClips(paths, seed=args.seed), args.clips, 0, args.seed)
        res["ratio_ours_over_original"] = res["ours_clips_per_s"] / res["original_clips_per_s"]
        if args.workers > 0:
            w = bench_entries(entries, folder, "video", 2 * args.clips, args.workers, args.seed, progress=False)
            res[f"ours_clips_per_s_{args.workers}_workers"] = w["clips_per_s"]
            res[f"ours_steady_clips_per_s_{args.workers}_workers"] = w["steady_clips_per_s"]

    if args.json:
        print(json.dumps(res, indent=2))
    else:
        rows = [
            ("(a) PyAV full decode, frames/s (decode only)", res["pyav_decode_fps"]),
            ("(a) PyAV full decode + RGB + stack, frames/s (read_all)", res["pyav_decode_rgb_fps"]),
            ("(a) OpenCV full decode, frames/s (grab only)", res["opencv_decode_fps"]),
            ("    clip decode, PyAV seek + kept-frame RGB, clips/s", res["pyav_clip_decode_per_s"]),
            ("    clip decode, OpenCV seek + grab/read, clips/s", res["opencv_clip_decode_per_s"]),
            ("(b) ours, full pipeline, workers=0, clips/s", res["ours_clips_per_s"]),
            ("(c) original approach (PIL), workers=0, clips/s", res["original_clips_per_s"]),
            ("(d) ratio ours / original", res["ratio_ours_over_original"]),
        ]
        if args.workers > 0:
            rows.append((f"    ours, {args.workers} workers, clips/s (incl. start-up)",
                         res[f"ours_clips_per_s_{args.workers}_workers"]))
            rows.append((f"    ours, {args.workers} workers, clips/s (steady)",
                         res[f"ours_steady_clips_per_s_{args.workers}_workers"]))
        print(f"{args.videos} videos, {res['format']}; {res['clip']}; {args.clips} clips per row")
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
