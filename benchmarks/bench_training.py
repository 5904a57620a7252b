"""Training and evaluation throughput of the recognition engine.

Prints, side by side:
  1. model-only step time of R(2+1)D-18 (forward + backward + Adam step on random clips) for fp32, AMP
     (bf16, fp16), channels_last_3d and torch.compile. The variants other than fp32 only exist on CUDA: on a
     CPU machine they are reported as "n/a (CUDA only)". Default shape: batch 8 of 3 x 32 x 112 x 112 on CUDA,
     a small shape on CPU (--frames/--size/--batch override);
  2. loader-only clips/s (decode + sample + augment, DataLoader with W workers, no model) on a synthetic
     UCF101 root, next to model-only clips/s at the same clip shape, so you can see which one limits training;
  3. the tiny synthetic end-to-end setting: training clips/s and evaluation videos/s of a real run.

    python benchmarks/bench_training.py [--workers 2] [--steps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from severe.data.transforms import Normalization
from severe.models import VideoClassifier, build_backbone, linear_head
from severe.recognition.data import clip_dataset, prepare_split
from severe.recognition.runner import plan_run, run
from severe.synth.datasets import write_synthetic_root


def model_step_time(device: torch.device, batch: int, frames: int, size: int, steps: int, amp: str | None,
                    channels_last: bool, compile_model: bool) -> float:
    """Median seconds per training step on random clips."""
    torch.manual_seed(0)
    model = VideoClassifier(build_backbone("r2plus1d_18"), linear_head(512, 101)).to(device)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = torch.compile(model) if compile_model else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, frames, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 101, (batch,), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    times = []
    for i in range(steps + 2):  # two warm-up steps (compile happens there)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def loader_clips_per_s(root: Path, frames: int, size: int, workers: int, clips: int) -> float:
    split = prepare_split("ucf101", root, "train", num_examples=0, seed=0, allow_missing=False, run_dir=None)
    ds = clip_dataset("ucf101", root, split.entries, mode="train", num_frames=frames, fps=16.0, clips=max(1, clips // len(split.entries) + 1),
                      crop=size, test_resize=size, norm=Normalization(), seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=workers, shuffle=False)
    n, t0 = 0, time.perf_counter()
    for x, _, _ in loader:
        n += x.shape[0]
        if n >= clips:
            break
    return n / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int)
    p.add_argument("--frames", type=int)
    p.add_argument("--size", type=int)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    batch = args.batch or 8
    frames = args.frames or (32 if cuda else 8)
    size = args.size or (112 if cuda else 56)
    out: dict = {"device": str(device), "shape": [batch, 3, frames, size, size]}

    variants = {"fp32": (None, False, False), "amp_bf16": ("bf16", False, False), "amp_fp16": ("fp16", False, False),
                "channels_last_3d": (None, True, False), "amp_bf16+channels_last_3d": ("bf16", True, False),
                "compile": (None, False, True)}
    steps = {}
    for name, (amp, cl, comp) in variants.items():
        if not cuda and name != "fp32":
            steps[name] = "n/a (CUDA only)"
            continue
        steps[name] = round(model_step_time(device, batch, frames, size, args.steps, amp, cl, comp), 4)
    out["step_seconds"] = steps
    model_cps = batch / steps["fp32"]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_synthetic_root(root, "small", seed=0, datasets=["ucf101"])
        loader_cps = loader_clips_per_s(root, frames, size, args.workers, clips=96)
        out["throughput_clips_per_s"] = {"loader_only": round(loader_cps, 1), "model_only_fp32": round(model_cps, 1),
                                         "loader_workers": args.workers,
                                         "bottleneck": "loader" if loader_cps < model_cps else "model"}
        tiny = ["TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "8", "DATA.NUM_FRAMES", "8", "DATA.CROP", "32",
                "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", str(args.workers), "DATA.TRAIN_CLIPS_PER_VIDEO", "2",
                "DATA.TEST_CLIPS", "10", "TEST.BATCH_SIZE", "4"]
        t0 = time.perf_counter()
        res = run(plan_run("domain/ucf101", "scratch", None, tiny), root, Path(tmp) / "run", progress=False)
        total = time.perf_counter() - t0
        epoch = json.loads([l for l in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines() if '"epoch"' in l][-1])
        train_s = epoch["timing"]["epoch_seconds"]
        out["tiny_end_to_end"] = {"train_clips_per_s": round(epoch["samples"] / train_s, 1),
                                  "eval_videos_per_s": round(res["data"]["test_videos"] / max(total - train_s, 1e-9), 2),
                                  "shape": "8 frames x 32 x 32, 10 test clips"}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"device {out['device']}, model shape {out['shape']}")
        for k, v in steps.items():
            print(f"  step {k:<28} {v if isinstance(v, str) else f'{v * 1000:.0f} ms'}")
        t = out["throughput_clips_per_s"]
        print(f"clips/s  loader only ({t['loader_workers']} workers) {t['loader_only']}  |  model only {t['model_only_fp32']}"
              f"  -> bottleneck: {t['bottleneck']}")
        e = out["tiny_end_to_end"]
        print(f"tiny synthetic run: training {e['train_clips_per_s']} clips/s, evaluation {e['eval_videos_per_s']} videos/s ({e['shape']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
