"""``severe demo``: the whole product on a miniature, in minutes, on a CPU.

1. writes synthetic datasets in every official layout (``severe synth``);
2. pretrains an R(2+1)D-18 with labels on the synthetic source domain (the synthetic Kinetics) and saves it
   as a converted checkpoint, so the demo compares two initialisations: scratch and that pretrained one;
3. runs a miniature SEVERE suite for both through ``severe benchmark``'s machinery — every factor is
   represented: two domains (UCF101, SSv2), a small-sample run (UCF101 with few examples), a fine-grained
   subset (FineGym FX-S1), and the task shift (repetition counting, Charades multi-label, AVA detection);
4. writes ``report.md``, ``report.csv`` and plots with ``severe report``.

Shapes and epochs are tiny (8-frame clips of 32 px), so the numbers show the machinery, not the paper:
see the README for the real commands.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from severe.benchmark.launch import plan_jobs, run_local
from severe.experiments import EXPERIMENTS, Experiment
from severe.cli import setup_logging
from severe.errors import SevereError
from severe.engine.trainer import LAST_CHECKPOINT
from severe.io import atomic_torch_save

log = logging.getLogger("severe.demo")

_REC = ["TRAIN.BATCH_SIZE", "8", "DATA.NUM_FRAMES", "8", "DATA.CROP", "32", "DATA.TEST_RESIZE", "32",
        "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "2", "DATA.TEST_CLIPS", "2", "TEST.BATCH_SIZE", "4",
        "TRAIN.LR", "0.001", "TRAIN.MILESTONES", "[]", "DATA.TRAIN_CROP_SCALE", "[0.5, 1.0]"]
_REP = ["TRAIN.BATCH_SIZE", "4", "DATA.CROP", "32", "MODEL.FRAMES_PER_STREAM", "4", "DATA.ITEMS_PER_VIDEO", "2",
        "TRAIN.MAX_INNER_STEPS", "3", "DATA.NUM_WORKERS", "0", "TEST.BATCH_SIZE", "4", "DATA.MAX_SEGMENT_FRAMES", "60",
        "TEST.NUM_SCALES", "6", "TEST.REFINE_ITERS", "1", "TRAIN.LR", "0.0005"]


def demo_experiments(quick: bool) -> list[tuple[Experiment, list[str]]]:
    """The miniature suite: (experiment, overrides)."""
    epochs = "1" if quick else "3"
    rec = [*_REC, "TRAIN.EPOCHS", epochs]
    suite = [
        (EXPERIMENTS["ucf101"], rec),
        (EXPERIMENTS["ssv2"], rec),
        (EXPERIMENTS["ucf101_1000"], [*rec, "DATA.NUM_EXAMPLES", "20"]),
        (EXPERIMENTS["gym_fx_s1"], rec),
        (EXPERIMENTS["ucfrep"], [*_REP, "TRAIN.EPOCHS", epochs]),
        (replace(EXPERIMENTS["charades"], config="slowfast/Charades/TINY_SYNTHETIC.yaml"), ["TRAIN.EPOCHS", epochs]),
        (replace(EXPERIMENTS["ava"], config="slowfast/AVA/TINY_SYNTHETIC.yaml"), ["TRAIN.EPOCHS", epochs]),
    ]
    return suite[:2] + suite[4:5] if quick else suite


def remove_checkpoints(run_dir: Path) -> int:
    """Delete the training checkpoints of a finished run (results.json written); returns the bytes freed. The
    record, config and logs stay; ``severe run test`` on the run needs them back (``--keep-checkpoints``)."""
    if not (run_dir / "results.json").is_file():
        return 0
    freed = 0
    for ckpt in [run_dir / LAST_CHECKPOINT, *run_dir.glob("checkpoint_e[0-9]*.pt")]:
        if ckpt.is_file():
            freed += ckpt.stat().st_size
            ckpt.unlink()
    return freed


def pretrain_on_source(data_root: Path, out: Path, epochs: int, progress: bool, keep_checkpoints: bool = False) -> Path:
    """Supervised pretraining on the synthetic Kinetics; returns a converted checkpoint of the backbone."""
    from severe.recognition.runner import plan_run, run

    run_dir = out / "pretraining"
    target = out / "pretrained_synthetic_k400.pth"
    if target.exists():
        return target
    overrides = [*_REC, "TRAIN.EPOCHS", str(epochs), "DATA.TRAIN_CLIPS_PER_VIDEO", "4", "DATA.NUM_FRAMES", "8",
                 "TRAIN.MODE", "finetune", "EXPERIMENT.ID", "demo_pretraining", "EXPERIMENT.FACTOR", "domain",
                 "DATA.DATASET", "k400", "MODEL.HEAD_INIT", "default", "TRAIN.BATCH_SIZE", "8"]
    plan = plan_run("domain/ucf101", "scratch", None, overrides)
    run(plan, data_root, run_dir, resume=(run_dir / "checkpoint_last.pt").exists(), progress=progress)
    state = torch.load(run_dir / "checkpoint_last.pt", map_location="cpu", weights_only=True)["model"]
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    meta = {"method": "supervised", "arch": "r2plus1d_18",
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, "channel_order": "RGB",
            "source_file": "demo: supervised pretraining on the synthetic Kinetics-400", "source_sha256": None,
            "dropped": {"head": 2}, "note": "severe demo pretraining, not the published supervised model"}
    atomic_torch_save({"state_dict": backbone, "meta": meta}, target)
    if not keep_checkpoints:
        (run_dir / LAST_CHECKPOINT).unlink()  # the converted backbone above is what the demo uses
    return target


def run_demo(out: Path, quick: bool = False, progress: bool = True, keep_checkpoints: bool = False) -> dict:
    from severe.report.table import build_report
    from severe.report.plots import plot_report
    from severe.synth.datasets import write_synthetic_root

    t0 = time.perf_counter()
    out = Path(out)
    data_root = out / "data"
    if not data_root.exists():
        datasets = ["ucf101", "ssv2", "k400", "ucfrep"] + ([] if quick else ["gym99", "charades", "ava"])
        write_synthetic_root(data_root, "tiny", seed=0, datasets=datasets)
    log.info("stage: pretraining on the synthetic source domain (synthetic Kinetics-400, labels)")
    weights = pretrain_on_source(data_root, out, epochs=1 if quick else 4, progress=progress,
                                 keep_checkpoints=keep_checkpoints)
    runs = out / "runs"
    outcome = {}
    plan = [(method, w, experiment, overrides) for method, w in (("scratch", None), ("supervised", str(weights)))
            for experiment, overrides in demo_experiments(quick)]
    for i, (method, w, experiment, overrides) in enumerate(plan, 1):
        log.info("stage: experiment %d of %d: %s from %s", i, len(plan), experiment.label, method)
        jobs = plan_jobs([experiment], method, w, data_root.resolve(), runs.resolve(), False, {experiment.id: overrides})
        outcome.update({f"{method}/{k}": v for k, v in run_local(jobs, progress=progress).items()})
        if not keep_checkpoints:
            for job in jobs:
                remove_checkpoints(job.run_dir)
    failed = {k: v for k, v in outcome.items() if v.startswith("failed")}
    if failed:
        raise SevereError(f"demo experiments failed: {', '.join(failed)} (logs in {runs})")
    report = build_report([runs], reference=False, columns="all")
    (out / "report.md").write_text(_header(time.perf_counter() - t0, quick) + report.to_markdown() + "\n", encoding="utf-8")
    (out / "report.csv").write_text(report.to_csv(), encoding="utf-8")
    plot_report(report, out / "report.png")
    return {"report": str(out / "report.md"), "seconds": round(time.perf_counter() - t0, 1), "outcome": outcome}


def _header(seconds: float, quick: bool) -> str:
    what = ("a reduced set (two domains and repetition counting; --quick)" if quick else
            "every factor of SEVERE: two domains, a small-sample run, a fine-grained FineGym subset, repetition "
            "counting (error, lower is better), Charades multi-label and AVA detection (mAP)")
    return ("# severe demo: a miniature SEVERE table\n\n"
            "Two initialisations of R(2+1)D-18, `scratch` and `supervised` (here: pretrained with labels on the "
            f"synthetic source domain inside the demo, not the published model), each evaluated on {what}. "
            "Synthetic data, 8-frame clips of 32 px and a few epochs on a CPU: it shows the machinery, not the "
            f"paper's numbers. Took {seconds:.0f} s.\n\n")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="severe demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="severe_demo", help="output folder (default: ./severe_demo)")
    p.add_argument("--quick", action="store_true", help="a reduced demo (fewer experiments, one epoch): used by the tests")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each finished run's training checkpoint (about 360 MB each; needed only to re-test a run "
                        "with 'severe run test'); by default they are deleted once the run's results.json is written")
    args = p.parse_args(argv)
    setup_logging()
    from severe.io import check_writable

    check_writable(args.out)  # fail in a second, not after the pretraining
    result = run_demo(Path(args.out), quick=args.quick, progress=not args.no_progress,
                      keep_checkpoints=args.keep_checkpoints)
    size = sum(f.stat().st_size for f in Path(args.out).rglob("*") if f.is_file())
    print(f"demo finished in {result['seconds']} s, {size / 2**20:.0f} MB in {args.out}; report: {result['report']} "
          f"(and report.csv, report.png)")
    return 0
