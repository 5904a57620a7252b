"""Throughput and peak memory of ViT video backbones: one finetuning step (forward + backward + AdamW step, the
ViT recipe's optimiser, docs/protocol.md §15) on random clips.

One row per family (VideoMAE tubelet 2, UMT tubelet 1, TimeSformer, CLIP) and activation-checkpointing
setting (``--ckpt``), each measured in its own subprocess. On CUDA: batch 8 x 3 x 16 x 224 x 224 in bf16
autocast, peak memory = torch.cuda.max_memory_allocated. On CPU: a small input (default 2 x 3 x 8 x 112 x 112,
fp32 unless ``--dtype bf16``), peak memory = the process's peak resident set size (ru_maxrss) minus its resident
size before the first step (model and input allocated; the optimiser state is created in the first step, so it
is included), i.e. the activations, gradients, optimiser state and workspace at the peak.

``--estimate`` (CPU) also measures batch 1 and 2, takes the difference as the memory of one clip of the small
input, scales it by the token ratio to a 16 x 224 x 224 clip (linear in tokens: it assumes CUDA's fused
scaled_dot_product_attention, which keeps no tokens x tokens score matrix) and adds the weights, gradients and
AdamW state (16 bytes per parameter) to estimate the peak of a batch-8 finetuning step on a GPU. That number is
an estimate, not a measurement.

    python benchmarks/bench_vit.py [--arch vit_b_videomae ...] [--batch B] [--frames T] [--size S] [--steps N]
                                   [--dtype auto|fp32|bf16] [--ckpt both|off|on] [--estimate] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from severe.models.vit import VIT_ARCHS, build_vit

DEFAULT_ARCHS = ["vit_b_videomae", "vit_b_umt", "vit_b_timesformer", "vit_b_clip"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def measure(name: str, device: torch.device, batch: int, frames: int, size: int, steps: int, ckpt: bool,
            dtype: torch.dtype | None) -> dict:
    torch.manual_seed(0)
    model = build_vit(name, grad_checkpointing=ckpt).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(batch, 3, frames, size, size, device=device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = current_rss_mb()
    times = []
    for i in range(steps + 1):  # one warm-up step
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(x).float().square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    step = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if cuda else peak_rss_mb() - rss0
    return {"arch": name, "checkpointing": ckpt, "shape": [batch, 3, frames, size, size], "dtype": str(dtype or "fp32"),
            "parameters": sum(p.numel() for p in model.parameters()),
            "step_s": round(step, 4), "clips_per_s": round(batch / step, 2), "peak_mb": round(peak, 1),
            "peak_kind": "max_memory_allocated" if cuda else "peak RSS above pre-step RSS"}


def measure_in_subprocess(name: str, batch: int, frames: int, size: int, steps: int, ckpt: bool, dtype: str) -> dict:
    cmd = [sys.executable, __file__, "--row", name, str(int(ckpt)), "--batch", str(batch), "--frames", str(frames),
           "--size", str(size), "--steps", str(steps), "--dtype", dtype]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=DEFAULT_ARCHS, choices=sorted(VIT_ARCHS))
    p.add_argument("--batch", type=int)
    p.add_argument("--frames", type=int, help="default: 16 on CUDA, 8 on CPU")
    p.add_argument("--size", type=int)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto", help="autocast dtype (auto: bf16 on CUDA, "
                   "fp32 on CPU)")
    p.add_argument("--ckpt", choices=("both", "off", "on"), default="both", help="activation checkpointing rows")
    p.add_argument("--estimate", action="store_true", help="CPU: also estimate a GPU batch-8 16x224x224 step (see above)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--row", nargs=2, metavar=("ARCH", "CKPT"), help=argparse.SUPPRESS)  # one measurement, as JSON
    args = p.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    batch = args.batch or (8 if cuda else 2)
    size = args.size or (224 if cuda else 112)
    frames = args.frames or (16 if cuda else 8)
    dtype_name = ("bf16" if cuda else "fp32") if args.dtype == "auto" else args.dtype
    dtype = torch.bfloat16 if dtype_name == "bf16" else None
    if args.row:
        print(json.dumps(measure(args.row[0], device, batch, frames, size, args.steps, args.row[1] == "1", dtype)))
        return 0
    ckpts = {"both": (False, True), "off": (False,), "on": (True,)}[args.ckpt]
    rows = [measure_in_subprocess(name, batch, frames, size, args.steps, ckpt, dtype_name)
            for name in args.arch for ckpt in ckpts]
    estimates = [estimate_gpu(name, frames, size, args.steps, ckpt, dtype_name) for name in args.arch for ckpt in ckpts] \
        if args.estimate and not cuda else []
    if args.json:
        print(json.dumps({"device": str(device), "dtype": dtype_name, "rows": rows, "estimates": estimates}, indent=2))
        return 0
    print(f"device {device}, {dtype_name}, forward+backward+AdamW step, median of {args.steps} (measured)")
    print(f"{'arch':<20} {'ckpt':<5} {'input':<22} {'step s':>8} {'clips/s':>8} {'peak MB':>9}")
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        print(f"{r['arch']:<20} {'on' if r['checkpointing'] else 'off':<5} {shape:<22} {r['step_s']:>8.3f} "
              f"{r['clips_per_s']:>8.2f} {r['peak_mb']:>9.1f}")
    if not cuda:
        print("peak MB on CPU = peak resident set size above the resident size before the first step")
    for e in estimates:
        print(f"ESTIMATE {e['arch']} ckpt {'on' if e['checkpointing'] else 'off'}: batch {GPU_BATCH} x 3 x {GPU_FRAMES} x "
              f"{GPU_SIZE}^2 {dtype_name} finetuning step ~ {e['estimated_gb']:.1f} GB "
              f"({e['per_clip_mb']:.0f} MB per clip measured at {e['measured_shape']}, x{e['token_ratio']:.0f} tokens, "
              f"+ {e['static_gb']:.2f} GB weights/grads/AdamW); not a GPU measurement")
    return 0


GPU_BATCH, GPU_FRAMES, GPU_SIZE = 8, 16, 224


def estimate_gpu(name: str, frames: int, size: int, steps: int, ckpt: bool, dtype: str) -> dict:
    """Estimate (not measure) the peak of a batch-8 16 x 224 x 224 step from two small CPU measurements."""
    one, two = (measure_in_subprocess(name, b, frames, size, steps, ckpt, dtype) for b in (1, 2))
    per_clip = max(two["peak_mb"] - one["peak_mb"], 0.0)
    tubelet = VIT_ARCHS[name][1]["temporal_stride"]
    tokens = lambda t, s: (t // tubelet) * (s // 16) ** 2  # noqa: E731
    ratio = tokens(GPU_FRAMES, GPU_SIZE) / tokens(frames, size)
    static_gb = one["parameters"] * 16 / 2 ** 30  # fp32 weights + grads + AdamW exp_avg, exp_avg_sq
    return {"arch": name, "checkpointing": ckpt, "measured_shape": one["shape"], "per_clip_mb": per_clip,
            "token_ratio": ratio, "static_gb": static_gb,
            "estimated_gb": GPU_BATCH * per_clip * ratio / 1024 + static_gb, "kind": "estimate"}


if __name__ == "__main__":
    sys.exit(main())
