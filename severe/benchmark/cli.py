"""``severe benchmark``: one command from a checkpoint to every experiment of a suite."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from severe.benchmark.launch import SlurmSettings, plan_jobs, queued_slurm_jobs, run_local, submit_slurm
from severe.benchmark.runners import route_overrides
from severe.checkpoints.weights import check_initialisation
from severe.cli import setup_logging
from severe.data.registry import resolve_data_root
from severe.experiments import SUITES, suite

EPILOG = "suites:\n" + "\n".join(f"  {name:<12} {', '.join(ids)}" for name, ids in SUITES.items()) + """

Each experiment runs into OUT/<method>/<experiment>/ (with --seeds: OUT/<method>/<experiment>/seed<S>/, the
seed set through SEED); runs whose results.json exists are skipped,
unfinished ones are resumed, so the same command continues an interrupted benchmark and several
initialisations share one output tree. Then: severe report OUT.

KEY VALUE overrides go to every experiment whose config has the key; prefix a key with a runner
(recognition:, repetition:, ava:, charades:) to target only those, e.g. recognition:TRAIN.EPOCHS 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="severe benchmark", description="Run a suite of SEVERE experiments for one "
                                "initialisation, locally one after another or as one SLURM job each.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="KEY VALUE", help="config overrides (see below)")
    p.add_argument("--init", required=True, metavar="METHOD", help="scratch or the method of --weights")
    p.add_argument("--weights", metavar="PATH", help="converted weights or the published checkpoint")
    p.add_argument("--data-root", metavar="DIR", help="data root (default: $SEVERE_DATA)")
    p.add_argument("--out", required=True, metavar="DIR", help="output tree shared by all initialisations")
    p.add_argument("--suite", default="severe", choices=list(SUITES), help="which experiments (default: severe)")
    p.add_argument("--only", metavar="ID", nargs="+", help="run only these experiment ids of the suite")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S",
                   help="run every experiment once per seed into OUT/<method>/<experiment>/seed<S>/ (the report "
                        "averages them); default: each config's own seed into OUT/<method>/<experiment>/")
    p.add_argument("--launcher", default="local", choices=("local", "slurm"))
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per SLURM job (default 1; 0 on a cluster without GPUs)")
    p.add_argument("--cpus", type=int, default=10, help="CPUs per SLURM job (default 10)")
    p.add_argument("--hours", type=float, default=24.0, help="time limit per SLURM job in hours (default 24)")
    p.add_argument("--mem", help="memory per SLURM job, e.g. 64G")
    p.add_argument("--account", help="SLURM account")
    p.add_argument("--trust", action="store_true", help="allow unpickling objects in a raw checkpoint you trust")
    p.add_argument("--dry-run", action="store_true", help="print the plan (and each job's command) without running")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    setup_logging()
    method = check_initialisation(args.init, args.weights)
    data_root = resolve_data_root(args.data_root)
    experiments = suite(args.suite, args.only)
    overrides = route_overrides(experiments, args.overrides)
    out = Path(args.out)
    jobs = plan_jobs(experiments, method, args.weights, data_root.resolve(), out.resolve(), args.trust, overrides,
                     seeds=args.seeds)
    print(f"suite {args.suite} for {method}: {len(jobs)} runs, "
          f"{sum(j.status == 'done' for j in jobs)} done, {sum(j.status == 'resume' for j in jobs)} to resume")
    if args.dry_run:
        for j in jobs:
            print(f"  [{j.status}] {j.name}: {j.command()}")
        return 0
    if args.launcher == "slurm":
        settings = SlurmSettings(args.partition, args.gpus, args.cpus, args.hours, args.mem, args.account)
        log_dir = out / "slurm_logs"
        queued = queued_slurm_jobs(jobs, log_dir)  # still waiting or running from an earlier submission
        submitted = submit_slurm([j for j in jobs if j.name not in queued], settings, log_dir)
        print(json.dumps({"submitted": submitted, "already queued or running": queued}, indent=2))
        return 0
    outcome = run_local(jobs, progress=not args.no_progress)
    for name, status in outcome.items():
        print(f"  {name:<20} {status}")
    print(f"results under {out / method}; table: severe report {out}")
    return 1 if any(s.startswith("failed") for s in outcome.values()) else 0
