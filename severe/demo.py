"""``severe demo``: the whole product on a miniature, in minutes, on a CPU.

1. writes the demo's synthetic data root (:mod:`severe.synth.demo_domains`): the target datasets in their
   official layouts and a source domain in the Kinetics-400 layout (5 drift directions, a label space of its own);
2. pretrains the demo's backbone with labels on the source domain and saves it as a converted checkpoint, so
   the demo compares two initialisations: ``scratch`` and that pretrained one (``supervised``);
3. runs the 8 SEVERE-benchmark columns in miniature for both, plus AVA, through ``severe benchmark``'s
   machinery, with one protocol for both rows: SSv2 and Gym99 (domain), UCF101 and Gym99 with few examples
   (samples), FineGym FX-S1 and UB-S1 (granularity), UCF repetition counting and Charades (task);
4. writes ``report.md``, ``report.csv`` and ``report.png`` (``severe report``) with each row's SEVERE mean and
   mean rank.

The backbone is R(2+1)D-18 at 1/8 of its width (``r2plus1d_18_w8``: the same blocks, depth and strides), clips
are 8 frames of 32 px and runs are short, so the numbers show what the benchmark measures (does the
initialisation help, and on which factor), not the paper's values: see the README for the real commands.
Experiments run two at a time (``--jobs``), each on one core. Checkpoints of finished runs are deleted unless
``--keep-checkpoints``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from severe.cli import LOG_DATEFMT, LOG_FORMAT, setup_logging
from severe.engine.trainer import LAST_CHECKPOINT
from severe.errors import SevereError
from severe.experiments import EXPERIMENTS, SEVERE_COLUMNS, Experiment
from severe.io import atomic_torch_save, atomic_write_text

log = logging.getLogger("severe.demo")

#: the demo's backbone: R(2+1)D-18's architecture at 1/8 width (severe.models.backbones)
DEMO_ARCH = "r2plus1d_18_w8"
#: what the demo runs: the SEVERE benchmark's 8 columns, then AVA
DEMO_COLUMNS: tuple[str, ...] = (*SEVERE_COLUMNS, "ava")
#: target datasets written for them (the FineGym columns share one folder)
TARGET_DATASETS = ["ucf101", "ssv2", "gym99", "ucfrep", "charades", "ava"]
METHODS = ("scratch", "supervised")
PRETRAINED_FILE = "pretrained_synthetic_k400.pth"


@dataclass(frozen=True)
class DemoScale:
    """How much the demo does. Pretraining is one epoch over the source domain; each target run is one epoch that
    visits every training video ``target_clips`` times."""

    source_per_class: tuple[int, int]  # source videos per class (train, val)
    pretrain_clips: int  # clips per source video in the pretraining epoch (batches of PRETRAIN_BATCH)
    target_clips: int  # clips per training video in a recognition target run (batch 8)
    task_epochs: int  # epochs of the repetition, Charades and AVA runs


#: ``standard`` is the README's demo; ``quick`` (``--quick``) pretrains and trains less: the test suite's
SCALES: dict[str, DemoScale] = {
    "standard": DemoScale(source_per_class=(100, 10), pretrain_clips=19, target_clips=12, task_epochs=2),
    "quick": DemoScale(source_per_class=(20, 2), pretrain_clips=1, target_clips=2, task_epochs=1),
}

#: the recognition settings every demo run shares (pretraining included): 8 frames of 32 px at 8 fps (motion of
#: a few pixels per frame), Adam without decay, a constant learning rate, one epoch
_CLIP = ["MODEL.ARCH", DEMO_ARCH, "DATA.NUM_FRAMES", "8", "DATA.CROP", "32", "DATA.TEST_RESIZE", "32",
         "DATA.FPS", "8", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CROP_SCALE", "[0.5, 1.0]", "TRAIN.OPTIMIZER", "adam",
         "TRAIN.WEIGHT_DECAY", "0.0", "TRAIN.MILESTONES", "[]", "TRAIN.EPOCHS", "1", "TEST.BATCH_SIZE", "16"]
PRETRAIN_LR = "0.003"
PRETRAIN_BATCH = 16
TARGET_LR = "0.001"


def _recognition(clips: int) -> list[str]:
    return [*_CLIP, "TRAIN.BATCH_SIZE", "8", "TRAIN.LR", TARGET_LR, "DATA.TRAIN_CLIPS_PER_VIDEO", str(clips),
            "DATA.TEST_CLIPS", "2"]


def _repetition(epochs: int) -> list[str]:
    return ["MODEL.ARCH", DEMO_ARCH, "TRAIN.BATCH_SIZE", "4", "DATA.CROP", "32", "MODEL.FRAMES_PER_STREAM", "4",
            "DATA.ITEMS_PER_VIDEO", "2", "TRAIN.MAX_INNER_STEPS", "2", "DATA.NUM_WORKERS", "0", "TEST.BATCH_SIZE", "4",
            "DATA.MAX_SEGMENT_FRAMES", "60", "TEST.NUM_SCALES", "3", "TEST.REFINE_ITERS", "1", "TRAIN.LR", "0.0005",
            "TRAIN.EPOCHS", str(epochs)]


def demo_experiments(scale: DemoScale) -> list[tuple[Experiment, list[str]]]:
    """The miniature suite in :data:`DEMO_COLUMNS` order: (experiment, overrides), the same for both rows."""
    rec = _recognition(scale.target_clips)
    task = ["MODEL.ARCH", DEMO_ARCH, "TRAIN.EPOCHS", str(scale.task_epochs)]
    overrides = {
        "ssv2": rec, "gym99": rec, "gym_fx_s1": rec, "gym_ub_s1": rec,
        # the samples factor: the same datasets with a class-balanced subset of their training lists
        "ucf101_1000": [*rec, "DATA.NUM_EXAMPLES", "10"], "gym99_1000": [*rec, "DATA.NUM_EXAMPLES", "16"],
        "ucfrep": _repetition(scale.task_epochs), "charades": task, "ava": task,
    }
    configs = {"charades": "slowfast/Charades/TINY_SYNTHETIC.yaml", "ava": "slowfast/AVA/TINY_SYNTHETIC.yaml"}
    return [(replace(EXPERIMENTS[e], config=configs.get(e, EXPERIMENTS[e].config)), overrides[e]) for e in DEMO_COLUMNS]


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


def pretrain_on_source(data_root: Path, out: Path, scale: DemoScale, keep_checkpoints: bool) -> tuple[Path, dict]:
    """Supervised pretraining on the source domain; returns a converted checkpoint of the backbone and the run's
    results (its source-domain validation accuracy)."""
    from severe.recognition.runner import plan_run, run
    from severe.synth.demo_domains import SOURCE_CLASSES

    run_dir = out / "pretraining"
    target = out / PRETRAINED_FILE
    results_file = run_dir / "results.json"
    if target.exists() and results_file.is_file():
        log.info("pretrained weights found: %s (delete it to pretrain again)", target)
        return target, json.loads(results_file.read_text(encoding="utf-8"))
    overrides = [*_CLIP, "TRAIN.BATCH_SIZE", str(PRETRAIN_BATCH), "TRAIN.LR", PRETRAIN_LR, "DATA.TRAIN_CLIPS_PER_VIDEO",
                 str(scale.pretrain_clips), "DATA.TEST_CLIPS", "1", "TRAIN.MODE", "finetune", "EXPERIMENT.ID",
                 "demo_pretraining", "EXPERIMENT.FACTOR", "domain", "DATA.DATASET", "k400", "MODEL.NUM_CLASSES",
                 str(SOURCE_CLASSES)]
    plan = plan_run("domain/ucf101", "scratch", None, overrides)
    if not results_file.is_file():
        if run_dir.exists() and not (run_dir / LAST_CHECKPOINT).exists():
            shutil.rmtree(run_dir)  # interrupted before its first checkpoint: the demo's own folder starts again
        with _console_to(out / "logs" / "pretraining.log"):
            run(plan, data_root, run_dir, resume=(run_dir / LAST_CHECKPOINT).exists(), progress=False)
    if not (run_dir / LAST_CHECKPOINT).exists():
        raise SevereError(f"{run_dir} holds a finished pretraining without its checkpoint; delete that folder to "
                          f"pretrain again")
    result = json.loads(results_file.read_text(encoding="utf-8"))
    state = torch.load(run_dir / LAST_CHECKPOINT, map_location="cpu", weights_only=True)["model"]
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    meta = {"method": "supervised", "arch": DEMO_ARCH,
            "normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, "channel_order": "RGB",
            "source_file": "demo: supervised pretraining on the synthetic source domain (Kinetics-400 layout)",
            "source_sha256": None, "dropped": {"head": 2},
            "note": "severe demo pretraining, not the published supervised model"}
    atomic_torch_save({"state_dict": backbone, "meta": meta}, target)
    if not keep_checkpoints:
        remove_checkpoints(run_dir)
    return target, result


@contextlib.contextmanager
def _console_to(path: Path):
    """Send a run's console output (its trainer lines and JSON summary) to ``path``, so that the demo's own
    console is one stream of its log lines; train.log and results.json in the run folder hold the rest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers = [handler]
        try:
            yield
        finally:
            root.handlers = saved


def _init_worker() -> None:
    torch.set_num_threads(1)


def _run_experiment(entry: tuple[str, str], argv: list[str], run_dir: str, console: str,
                    keep_checkpoints: bool) -> tuple[int, str]:
    """One experiment in a worker process (its console output goes to ``console``): exit code and its primary
    value as text."""
    from severe.benchmark.launch import run_job

    with _console_to(Path(console)):
        code = run_job(*entry, argv)
    value = ""
    results = Path(run_dir) / "results.json"
    if code == 0 and results.is_file():
        primary = json.loads(results.read_text(encoding="utf-8")).get("primary", {})
        value = f"{primary.get('metric')} {primary.get('value')}"
        if not keep_checkpoints:
            remove_checkpoints(Path(run_dir))
    return code, value


def folder_bytes(path: Path) -> int:
    """Total size of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def run_demo(out: Path, scale: str = "standard", keep_checkpoints: bool = False, jobs: int = 2) -> dict:
    """Run the demo into ``out``; returns the report path, the table, seconds, output bytes and each run's outcome."""
    from severe.benchmark.launch import plan_jobs
    from severe.report.plots import plot_report
    from severe.report.table import build_report
    from severe.synth.demo_domains import SOURCE_CLASSES, write_demo_root

    if scale not in SCALES:
        raise SevereError(f"unknown demo scale {scale!r}; use one of {', '.join(SCALES)}")
    s = SCALES[scale]
    t0 = time.perf_counter()
    out = Path(out).resolve()
    data_root = out / "data"
    suite = demo_experiments(s)
    log.info("stage 1 of 4: writing the synthetic data root (a source domain and %d target datasets) to %s",
             len(TARGET_DATASETS), data_root)
    if not data_root.exists():
        write_demo_root(data_root, TARGET_DATASETS, s.source_per_class, seed=0)
    log.info("stage 2 of 4: pretraining on the synthetic source domain (%d drift directions, %d videos, %d steps)",
             SOURCE_CLASSES, SOURCE_CLASSES * s.source_per_class[0],
             SOURCE_CLASSES * s.source_per_class[0] * s.pretrain_clips // PRETRAIN_BATCH)
    weights, pretraining = pretrain_on_source(data_root, out, s, keep_checkpoints)
    log.info("source-domain validation accuracy after pretraining: %.1f%% (chance %.1f%%)",
             pretraining["primary"]["value"], 100.0 / SOURCE_CLASSES)
    runs = out / "runs"
    planned = [(experiment, method, plan_jobs([experiment], method, None if method == "scratch" else str(weights),
                                              data_root, runs, False, {experiment.id: overrides})[0])
               for experiment, overrides in suite for method in METHODS]
    total = len(planned)
    log.info("stage 3 of 4: %d experiments (%d columns x %s), %d at a time", total, len(suite), " and ".join(METHODS),
             jobs)
    outcome: dict[str, str] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as pool:
        pending = {}
        for experiment, method, job in planned:
            name = f"{method}/{experiment.id}"
            if job.status == "done":
                outcome[name] = "skipped (results.json exists)"
                continue
            console = out / "logs" / f"{method}_{experiment.id}.log"
            future = pool.submit(_run_experiment, job.entry, job.argv, str(job.run_dir), str(console), keep_checkpoints)
            pending[future] = (name, experiment, console, time.perf_counter())
        finished = len(outcome)
        if finished:
            log.info("experiments 1-%d of %d: already done (results.json exists)", finished, total)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                name, experiment, console, started = pending.pop(future)
                code, value = future.result()
                outcome[name] = "ok" if code == 0 else f"failed (exit {code}; see {console})"
                finished += 1
                log.info("experiment %d of %d: %s (%s, %s factor) %s in %.0f s%s", finished, total, name,
                         experiment.label, experiment.factor, outcome[name], time.perf_counter() - started,
                         f": {value}" if value else "")
    failed = {k: v for k, v in outcome.items() if v.startswith("failed")}
    if failed:
        raise SevereError(f"demo experiments failed: {', '.join(failed)} (their logs: {out / 'logs'})")
    log.info("stage 4 of 4: writing the report")
    report = build_report([runs], reference=False, columns="all")
    seconds = time.perf_counter() - t0
    table = report.to_markdown()
    atomic_write_text(out / "report.md", _header(seconds, pretraining["primary"]["value"]) + table + "\n")
    atomic_write_text(out / "report.csv", report.to_csv())
    plot_report(report, out / "report.png")
    return {"report": str(out / "report.md"), "table": table, "seconds": round(seconds, 1),
            "bytes": folder_bytes(out), "outcome": outcome}


def _header(seconds: float, source_accuracy: float) -> str:
    from severe.synth.demo_domains import SOURCE_CLASSES

    return ("# severe demo: a miniature SEVERE table\n\n"
            f"Two initialisations of `{DEMO_ARCH}` (R(2+1)D-18 at 1/8 width): `scratch`, and `supervised`, "
            f"pretrained with labels inside the demo on a synthetic source domain of {SOURCE_CLASSES} drift directions "
            f"({source_accuracy:.1f}% on its validation videos; not the published model). Each is evaluated on "
            "the 8 SEVERE-benchmark columns in miniature (domain: SSv2, Gym99; samples: UCF101 and Gym99 with few "
            "training videos; granularity: FineGym FX-S1, UB-S1; task: UCF repetition counting (error, lower is "
            "better), Charades mAP) and AVA mAP, with one protocol for both rows. Synthetic data whose classes are "
            "carried by motion, 8-frame clips of 32 px and short runs on a CPU: it shows what the benchmark "
            f"measures, not the paper's numbers. Took {seconds:.0f} s.\n\n")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="severe demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="severe_demo", help="output folder (default: ./severe_demo)")
    p.add_argument("--quick", action="store_true",
                   help="less pretraining and shorter runs (the same 18 experiments): what the test suite runs; "
                        "pretraining that short does not show the advantage")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="experiments run at the same time, each on one core (default: 2, or 1 on a 1-core machine)")
    p.add_argument("--no-progress", action="store_true",
                   help="accepted for symmetry with the other commands: the demo draws no progress bars (a line per "
                        "stage and per finished experiment)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every run's training checkpoints (needed only to re-test a run with 'severe run test'); "
                        "by default they are deleted once the run's results.json is written")
    args = p.parse_args(argv)
    if args.jobs < 1:
        raise SevereError(f"--jobs {args.jobs}: give at least 1")
    setup_logging()
    from severe.io import check_writable

    check_writable(args.out)  # fail in a second, not after the pretraining
    result = run_demo(Path(args.out), scale="quick" if args.quick else "standard",
                      keep_checkpoints=args.keep_checkpoints, jobs=args.jobs)
    print(result["table"])
    print(f"demo finished in {result['seconds']} s, {result['bytes'] / 1e6:.0f} MB in {args.out}; "
          f"report: {result['report']} (and report.csv, report.png)")
    return 0
