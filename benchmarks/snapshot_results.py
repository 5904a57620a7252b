"""Behaviour snapshot: run every task in miniature on synthetic data with fixed seeds and print, as JSON,
what must not change across a refactor: results.json metrics, subset lists, trained weights, written
predictions, synthetic and converted checkpoints.

Only the documented command lines are used (``severe synth``, ``severe convert``, ``severe run ...``,
``SlowFast-ssl-vssl/tools/run_net.py``), so the same script runs on any version of the code:

    python benchmarks/snapshot_results.py --work /tmp/snap > before.json
    ... change the code ...
    python benchmarks/snapshot_results.py --work /tmp/snap2 > after.json
    python benchmarks/snapshot_results.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(os.environ.get("SEVERE_REPO", Path(__file__).resolve().parents[1]))
METHODS = ("supervised", "selavi", "moco", "video_moco", "pretext_contrast", "rspnet", "avid_cma", "ctp",
           "tubelet_contrast", "tclr", "gdt")
TINY = ["TRAIN.EPOCHS", "2", "TRAIN.BATCH_SIZE", "4", "DATA.NUM_FRAMES", "8", "DATA.CROP", "32",
        "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1", "DATA.TEST_CLIPS", "2",
        "TEST.BATCH_SIZE", "3", "TRAIN.MILESTONES", "[1]"]
TINY_REP = ["TRAIN.EPOCHS", "2", "TRAIN.BATCH_SIZE", "3", "DATA.CROP", "16", "MODEL.FRAMES_PER_STREAM", "4",
            "DATA.ITEMS_PER_VIDEO", "1", "TRAIN.MAX_INNER_STEPS", "3", "DATA.NUM_WORKERS", "0", "TEST.BATCH_SIZE", "4",
            "DATA.MAX_SEGMENT_FRAMES", "30"]


def last_value_wins(cmd: list[str]) -> list[str]:
    """``cmd`` with each repeated ``KEY VALUE`` override given once, with its last value (what older versions
    did with a repeated key; newer ones refuse it)."""
    out: list[str] = []
    where: dict[str, int] = {}
    i = 0
    while i < len(cmd):
        tok = cmd[i]
        if re.fullmatch(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+", tok) and i + 1 < len(cmd):
            if tok in where:
                out[where[tok] + 1] = cmd[i + 1]
            else:
                where[tok] = len(out)
                out += [tok, cmd[i + 1]]
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def tensors_sha(path: Path, key: str | None) -> str:
    """Hash of the tensors (names, dtypes, shapes, bytes) of a torch file, independent of pickling details."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = obj[key] if key else obj
    h = hashlib.sha256()
    for name in sorted(sd):
        t = sd[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()[:16]


def object_sha(path: Path) -> str:
    """Hash of every tensor in a (trusted, synthetic) checkpoint with its key path: pickled objects such as an
    argparse.Namespace may serialise differently across processes, the weights must not."""
    import torch

    h = hashlib.sha256()

    def walk(obj, where: str) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().contiguous()
            h.update(f"{where}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                walk(obj[k], f"{where}/{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{where}/{i}")

    walk(torch.load(path, map_location="cpu", weights_only=False), "")
    return h.hexdigest()[:16]


def sh(cmd: list[str], cwd: Path = REPO) -> None:
    t0 = time.time()
    # one thread: CPU results depend on the intra-op thread count, so fix it for comparable snapshots
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    print(f"[{time.time() - t0:5.1f}s] {' '.join(cmd[:6])} ... -> {proc.returncode}", file=sys.stderr)
    if proc.returncode:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"command failed: {' '.join(cmd)}")


def run_record(run_dir: Path) -> dict:
    res = json.loads((run_dir / "results.json").read_text())
    out = {"metrics": res["metrics"], "primary": res.get("primary")}
    for name in ("train_subset.txt", "val_split.txt", "detections.csv", "test_predictions.csv"):
        if (run_dir / name).is_file():
            out[name] = sha(run_dir / name)
    if (run_dir / "checkpoint_last.pt").is_file():
        out["weights"] = tensors_sha(run_dir / "checkpoint_last.pt", "model")
    return out


def snapshot(work: Path, only: list[str] | None = None) -> dict:
    severe = [sys.executable, "-m", "severe.cli"]
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if not data.exists():
        sh([*severe, "synth", "--out", str(data), "--size", "tiny", "--seed", "0",
            "--datasets", "ucf101,ek100,ava,charades,ucfrep"])
    snap: dict = {"checkpoints": {}, "runs": {}}
    for m in METHODS:
        raw, conv = work / "ckpt" / f"{m}.pth", work / "conv" / f"{m}.pth"
        if not raw.exists():
            sh([sys.executable, "-c", "import sys; from severe.synth.checkpoints import write_synthetic_checkpoint as w; "
                "w(sys.argv[1], sys.argv[2], seed=1)", m, str(raw)])
        if not conv.exists():
            sh([*severe, "convert", "--method", m, "--trust", str(raw), str(conv)])
        snap["checkpoints"][m] = {"synthetic_tensors": object_sha(raw), "converted_tensors": tensors_sha(conv, "state_dict")}
    rec = [*severe, "run", "recognition"]
    runs = {
        "ucf101_moco_finetune": [*rec, "domain/ucf101", "--init", "moco", "--weights", str(work / "conv" / "moco.pth"), *TINY],
        "ucf101_scratch_subset_val": [*rec, "domain/ucf101", "--init", "scratch", *TINY, "DATA.NUM_EXAMPLES", "12",
                                      "DATA.VAL_FRACTION", "0.34"],
        "ucf101_tclr_linear": [*severe, "run", "linear", "linear/ucf101", "--init", "tclr", "--weights",
                               str(work / "conv" / "tclr.pth"), *TINY],
        "ucf101_knn": [*rec, "linear/ucf101_knn", "--init", "scratch", *TINY, "KNN.K", "3"],
        "arrow_of_time": [*rec, "task/arrow_of_time", "--init", "scratch", *TINY, "DATA.DATASET", "ucf101"],
        "ek100": [*rec, "domain/ek100", "--init", "scratch", *TINY, "TRAIN.EPOCHS", "1", "DATA.TRAIN_SHORT_SIDE", "[36, 40]",
                  "TRAIN.PRECISE_BN_BATCHES", "2"],
        "ucfrep_gdt": [*severe, "run", "repetition", "ucfrep", "--init", "gdt", "--weights", str(work / "conv" / "gdt.pth"),
                       *TINY_REP],
    }
    for name, cmd in runs.items():
        if only and name not in only:
            continue
        cmd = last_value_wins(cmd)
        out = work / "runs" / name
        if not (out / "results.json").is_file():
            sh([*cmd, "--data-root", str(data), "--out", str(out), "--no-progress"])
        snap["runs"][name] = run_record(out)
    slowfast = REPO / "SlowFast-ssl-vssl"
    for task, extra in (("ava", ["SOLVER.MAX_EPOCH", "1", "DATA.NUM_FRAMES", "4"]),
                        ("charades", ["SOLVER.MAX_EPOCH", "1", "DATA.NUM_FRAMES", "4", "TEST.NUM_ENSEMBLE_VIEWS", "2",
                                      "RNG_SEED", "2"])):
        if only and task not in only:
            continue
        out = work / "runs" / task
        cfg = slowfast / "configs" / ("AVA" if task == "ava" else "Charades") / "TINY_SYNTHETIC.yaml"
        if not (out / "results.json").is_file():
            sh([sys.executable, "tools/run_net.py", "--cfg", str(cfg), "DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR",
                str(out), "MODEL.INIT_METHOD", "moco", "MODEL.CKPT", str(work / "conv" / "moco.pth"), *extra,
                "--no-progress"], cwd=slowfast)
        snap["runs"][task] = run_record(out)
    return snap


def compare(a: dict, b: dict, path: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += compare(va, vb, f"{path}{key}.")
        elif va != vb:
            diffs.append(f"{path}{key}: {va!r} != {vb!r}")
    return diffs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, help="scratch folder (data, checkpoints, runs)")
    p.add_argument("--only", nargs="+", metavar="RUN", help="run only these runs (names as in the output)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two snapshots")
    args = p.parse_args()
    if args.compare:
        diffs = compare(*(json.loads(f.read_text()) for f in args.compare))
        print("\n".join(diffs) if diffs else "identical")
        return 1 if diffs else 0
    if not args.work:
        p.error("--work or --compare is required")
    print(json.dumps(snapshot(args.work, args.only), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
