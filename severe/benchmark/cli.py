"""``severe benchmark``: one command from a checkpoint to every experiment of a suite."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from severe.benchmark.launch import (Job, Outcome, SlurmSettings, clear_run_dir, plan_jobs, queued_slurm_jobs,
                                     run_jobs, submit_slurm)
from severe.benchmark.reuse import mismatch, resolved_config, weights_ids
from severe.benchmark.runners import route_overrides
from severe.checkpoints.weights import check_initialisation
from severe.cli import setup_logging
from severe.data.registry import resolve_data_root
from severe.errors import SevereError
from severe.experiments import EXPERIMENTS, SUITES, suite
from severe.tasks.schema import flag_overrides

EPILOG = "suites:\n" + "\n".join(f"  {name:<12} {', '.join(ids)}" for name, ids in SUITES.items()) + """

Each experiment runs into OUT/<method>/<experiment>/ (with --seeds: OUT/<method>/<experiment>/seed<S>/, the
seed set through SEED); runs whose results.json exists with the same config are skipped,
unfinished ones are resumed, so the same command continues an interrupted benchmark (Ctrl-C stops the
whole benchmark) and several initialisations share one output tree. Then: severe report OUT.
An existing run made with another config (other overrides, epochs, init or weights) or with an unreadable
results.json stops the benchmark before anything runs: choose another --out, or pass --rerun-mismatched
to empty those run directories and run them again. An experiment that fails is recorded with its reason
and the others still run; the summary lists done / failed / skipped and the exit status is 1 if any failed.

--only takes comma-separated ids and may be repeated: --only ucf101,gym99 or --only ucf101 --only gym99
(known experiment ids directly after --only are also taken: --only ucf101 gym99 KEY VALUE ...).

KEY VALUE overrides go to every experiment whose config has the key; prefix a key with a runner
(recognition:, repetition:, ava:, charades:) to target only those, e.g. recognition:TRAIN.EPOCHS 2.
Overrides may also follow --, e.g. --only ucf101 -- TRAIN.EPOCHS 2."""


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
    p.add_argument("--only", metavar="ID[,ID...]", action="append",
                   help="run only these experiment ids of the suite (comma-separated; repeatable)")
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
    p.add_argument("--rerun-mismatched", action="store_true",
                   help="empty and rerun existing runs whose config differs from this command's (or whose "
                        "results.json is unreadable) instead of stopping; their old results are deleted")
    p.add_argument("--dry-run", action="store_true", help="print the plan (and each job's command) without running")
    p.add_argument("--no-progress", action="store_true")
    return p


def gather_only(argv: list[str]) -> list[str]:
    """``--only a b KEY VALUE`` (the old form) -> ``--only a,b KEY VALUE``: the known experiment ids right after
    ``--only``'s value join it. Ids are lower-case names and never config keys, so nothing is ambiguous."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] == "--only" and i + 1 < len(argv):
            ids = [argv[i + 1]]
            i += 2
            while i < len(argv) and all(part in EXPERIMENTS for part in argv[i].split(",")):
                ids.append(argv[i])
                i += 1
            out.append(",".join(ids))
            continue
        if argv[i] == "--":
            out += argv[i + 1:]
            break
        i += 1
    return out


def _only(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    ids = [part.strip() for v in values for part in v.split(",") if part.strip()]
    if not ids:
        raise SevereError("--only: give at least one experiment id")
    return ids


def reuse_problems(jobs: list[Job], method: str, weights: str | None, trust: bool = False) -> dict[str, str]:
    """Existing runs that must not be reused for this command: job name -> one-line reason. A job whose
    config cannot be resolved (e.g. an invalid override) gets its ``error`` set instead (it fails alone)."""
    existing = [j for j in jobs if j.status in ("done", "resume")]
    ids = weights_ids(weights, trust) if weights and existing else None
    flags = flag_overrides(init=method, weights=weights)
    problems: dict[str, str] = {}
    for job in existing:
        try:
            requested = resolved_config(job.experiment, method, [*job.overrides, *flags])
        except SevereError as e:
            job.error = " ".join(str(e).split())
            continue
        reason = mismatch(job.run_dir, job.status, requested, method, ids)
        if reason is not None:
            problems[job.name] = reason
    return problems


def print_summary(outcome: Outcome) -> None:
    counts = {state: len(outcome.names(state)) for state in ("done", "failed", "skipped", "interrupted", "not run")}
    print("summary: " + ", ".join(f"{n} {state}" for state, n in counts.items() if n or state in ("done", "failed",
                                                                                                  "skipped")))
    for name, (state, reason) in outcome.states.items():
        text = f"{state} ({reason})" if state == "skipped" else f"{state}: {reason}" if reason else state
        print(f"  {name:<20} {text}")


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(gather_only(list(argv)))
    setup_logging()
    method = check_initialisation(args.init, args.weights)
    weights = str(Path(args.weights).resolve()) if args.weights else None  # like the data root: cwd-independent
    data_root = resolve_data_root(args.data_root)
    experiments = suite(args.suite, _only(args.only))
    overrides = route_overrides(experiments, args.overrides)
    out = Path(args.out)
    plan = dict(experiments=experiments, method=method, weights=weights, data_root=data_root.resolve(),
                out=out.resolve(), trust=args.trust, overrides=overrides, seeds=args.seeds)
    jobs = plan_jobs(**plan)
    problems = reuse_problems(jobs, method, weights, args.trust)
    if problems and args.rerun_mismatched:
        errors = {j.name: j.error for j in jobs}
        jobs = plan_jobs(**plan, replace=frozenset(problems))
        for j in jobs:
            j.error = errors[j.name]
    print(f"suite {args.suite} for {method}: {len(jobs)} runs, "
          f"{sum(j.status == 'done' for j in jobs)} done, {sum(j.status == 'resume' for j in jobs)} to resume"
          + (f", {len(problems)} to rerun (--rerun-mismatched)" if problems and args.rerun_mismatched else ""))
    if args.dry_run:
        for j in jobs:
            status = f"failed: {j.error}" if j.error else "mismatch" if j.name in problems and j.status != "replace" \
                else j.status
            print(f"  [{status}] {j.name}: {j.command()}")
    if problems and not args.rerun_mismatched:
        advice = "pass --rerun-mismatched to delete and rerun it, or choose another --out"
        if len(problems) == 1:
            ((name, reason),) = problems.items()
            raise SevereError(f"{name}: {reason}; {advice}")
        for name, reason in problems.items():
            print(f"severe benchmark: {name}: {reason}", file=sys.stderr)
        raise SevereError(f"{len(problems)} existing runs (above) differ from this command; "
                          f"{advice.replace('rerun it', 'rerun them')}")
    if args.dry_run:
        return 0
    if args.launcher == "slurm":
        settings = SlurmSettings(args.partition, args.gpus, args.cpus, args.hours, args.mem, args.account)
        log_dir = out / "slurm_logs"
        queued = queued_slurm_jobs(jobs, log_dir)  # still waiting or running from an earlier submission
        to_submit = [j for j in jobs if j.name not in queued]
        for j in to_submit:
            if j.status == "replace":
                clear_run_dir(j.run_dir)
        submitted = submit_slurm([j for j in to_submit if j.error is None], settings, log_dir)
        print(json.dumps({"submitted": submitted, "already queued or running": queued}, indent=2))
        for j in jobs:
            if j.error is not None:
                print(f"severe benchmark: {j.name}: not submitted: {j.error}", file=sys.stderr)
        return 1 if any(j.error is not None for j in jobs) else 0
    outcome = run_jobs(jobs, out.resolve() / "benchmark_errors" / method, progress=not args.no_progress)
    print_summary(outcome)
    print(f"results under {out / method}; table: severe report {out}")
    if outcome.interrupted:
        print("severe benchmark: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 1 if outcome.failed else 0
