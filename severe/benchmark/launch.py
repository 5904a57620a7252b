"""Run the expanded experiments: one after another in this process, or one SLURM job each (submitit)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import shlex
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from severe.benchmark.runners import RUNNERS, experiment_argv
from severe.errors import SevereError
from severe.experiments import Experiment
from severe.io import atomic_write_text
from severe.results import RESULTS_FILE

log = logging.getLogger("severe.benchmark")


@dataclass
class Job:
    """One experiment of one initialisation: where it runs and the exact arguments of its entry point."""

    experiment: Experiment
    run_dir: Path
    argv: list[str]
    status: str  # "done" (results exist), "resume" (unfinished run found), "new", "replace" (--rerun-mismatched)
    seed: int | None = None  # set by --seeds; None = the config's own seed
    overrides: list[str] = field(default_factory=list)  # the KEY VALUE pairs at the end of argv
    error: str | None = None  # why the job cannot run (recorded as failed without running)

    @property
    def name(self) -> str:
        """``<experiment>`` or ``<experiment>/seed<S>``."""
        return self.experiment.id if self.seed is None else f"{self.experiment.id}/seed{self.seed}"

    @property
    def entry(self) -> tuple[str, str]:
        runner = RUNNERS[self.experiment.runner]
        return runner.module, runner.function

    def command(self) -> str:
        module, function = self.entry
        return f"{sys.executable} -m severe.benchmark.job {module}:{function} " + " ".join(shlex.quote(a) for a in self.argv)


def plan_jobs(experiments: list[Experiment], method: str, weights: str | None, data_root: Path, out: Path,
              trust: bool, overrides: dict[str, list[str]], seeds: list[int] | None = None,
              replace: frozenset[str] = frozenset()) -> list[Job]:
    """A job per experiment in ``out/<method>/<experiment>`` (with ``seeds``: per experiment and seed in
    ``out/<method>/<experiment>/seed<S>``, the seed set through the runner's seed key); finished ones are
    marked done (skipped); the jobs named in ``replace`` start afresh in their (then emptied) directory."""
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise SevereError(f"--seeds {' '.join(map(str, seeds))}: each seed once")
    jobs = []
    for e in experiments:
        extra = overrides.get(e.id, [])
        runner = RUNNERS[e.runner]
        seed_key = runner.seed_key
        given = [k for k in extra[::2] if k in runner.names_of(seed_key)]
        if seeds is not None and given:
            raise SevereError(f"{e.id}: {given[0]} given both as an override and through --seeds; keep one")
        for seed in seeds if seeds is not None else [None]:
            run_dir = out / method / e.id if seed is None else out / method / e.id / f"seed{seed}"
            name = e.id if seed is None else f"{e.id}/seed{seed}"
            if name in replace:
                status = "replace"
            elif (run_dir / RESULTS_FILE).exists():
                status = "done"
            elif run_dir.exists() and any(run_dir.iterdir()):
                status = "resume"
            else:
                status = "new"
            job_overrides = extra + ([] if seed is None else [seed_key, str(seed)])
            argv = experiment_argv(e, method, weights, data_root, run_dir, resume=status == "resume", trust=trust,
                                   overrides=job_overrides)
            jobs.append(Job(e, run_dir, argv, status, seed, job_overrides))
    return jobs


def run_job(module: str, function: str, argv: list[str]) -> int:
    """Call an experiment's entry point (also what a SLURM job runs)."""
    from severe.cli import run_entry

    return run_entry(getattr(importlib.import_module(module), function), argv, f"{module}.{function}")


_SEED_DIR = re.compile(r"seed\d+")


def clear_run_dir(run_dir: Path) -> None:
    """Empty ``run_dir`` for a rerun (--rerun-mismatched), keeping the ``seed<S>/`` run directories of
    other seeds nested in it."""
    import shutil

    if not run_dir.is_dir():
        return
    for p in run_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            if not _SEED_DIR.fullmatch(p.name):
                shutil.rmtree(p)
        else:
            p.unlink()


@dataclass
class Outcome:
    """What happened to each job of a local run: ``state`` done / failed / skipped / interrupted / not run,
    with a one-line reason."""

    states: dict[str, tuple[str, str]] = field(default_factory=dict)
    interrupted: bool = False

    def names(self, state: str) -> list[str]:
        return [n for n, (s, _) in self.states.items() if s == state]

    @property
    def failed(self) -> bool:
        return bool(self.names("failed"))


def _first_line(text: str) -> str:
    return " ".join(str(text).split()) or "no message"


def run_one(job: Job, error_dir: Path) -> tuple[str, str]:
    """Run one job in this process; returns (state, reason). A SevereError (or any other exception) is a
    failed experiment; KeyboardInterrupt propagates (it stops the whole benchmark)."""
    module, function = job.entry
    try:
        entry = getattr(importlib.import_module(module), function)
        code = int(entry(job.argv, prog=f"{module}.{function}") or 0)
    except SevereError as e:
        return "failed", _first_line(str(e))
    except SystemExit as e:  # the entry point's argparse refused the arguments (its message is above)
        if e.code in (0, None):
            return "done", ""
        return "failed", f"its entry point refused the arguments (exit {e.code}; message above)"
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a bug or an unforeseen fault: keep the traceback for a bug report, go on
        trace = error_dir / f"{job.name.replace('/', '-')}.traceback.txt"
        atomic_write_text(trace, traceback.format_exc())
        return "failed", f"{type(e).__name__}: {_first_line(str(e))} (traceback in {trace})"
    if code == 130:
        raise KeyboardInterrupt
    return ("done", "") if code == 0 else ("failed", f"exit status {code}")


def default_error_dir(job: Job) -> Path:
    """``OUT/benchmark_errors/<method>`` of a job in ``OUT/<method>/<experiment>[/seed<S>]``."""
    method_dir = job.run_dir.parent if job.seed is None else job.run_dir.parent.parent
    return method_dir.parent / "benchmark_errors" / method_dir.name


def run_local(jobs: list[Job], progress: bool = True) -> dict[str, str]:
    """:func:`run_jobs` with one status text per job: ``ok``, ``skipped (results.json exists)`` or
    ``failed (<reason>)``; Ctrl-C propagates as KeyboardInterrupt."""
    if not jobs:
        return {}
    outcome = run_jobs(jobs, default_error_dir(jobs[0]), progress)
    if outcome.interrupted:
        raise KeyboardInterrupt
    texts = {"done": "ok", "skipped": "skipped (results.json exists)"}
    return {n: texts.get(state, f"{state} ({reason})") for n, (state, reason) in outcome.states.items()}


def run_jobs(jobs: list[Job], error_dir: Path, progress: bool = True) -> Outcome:
    """Run pending jobs one after another; a failing experiment is recorded with its reason and the others
    still run; Ctrl-C stops the whole benchmark (the rest are 'not run'; the same command resumes).
    Tracebacks of unexpected errors go to ``error_dir``."""
    outcome = Outcome()
    for j in jobs:
        skip = j.status == "done" and j.error is None
        outcome.states[j.name] = ("skipped", "results.json exists") if skip else ("not run", "")
    pending = [j for j in jobs if j.status != "done" or j.error is not None]
    bar = tqdm(pending, desc="experiments", unit="exp", disable=not progress)
    try:
        with _sigint_seen() as seen:
            _run_pending(bar, outcome, error_dir, seen)
    except KeyboardInterrupt:  # between two experiments
        outcome.interrupted = True
    bar.close()
    return outcome


@contextlib.contextmanager
def _sigint_seen():
    """Note every SIGINT (then raise KeyboardInterrupt as Python does), so that an interrupt which surfaces as
    another error (e.g. a data-loader worker killed by the same Ctrl-C) still stops the benchmark."""
    seen: list[bool] = []

    def handler(signum, frame):
        seen.append(True)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_pending(bar, outcome: Outcome, error_dir: Path, seen: list[bool]) -> None:
    for job in bar:
        bar.set_postfix_str(job.name)
        if job.error is not None:
            outcome.states[job.name] = ("failed", job.error)
            log.error("%s failed: %s", job.name, job.error)
            continue
        if job.status == "replace":
            log.info("%s: emptying %s for a fresh run (--rerun-mismatched)", job.name, job.run_dir)
            clear_run_dir(job.run_dir)
        log.info("%s %s -> %s", "resuming" if job.status == "resume" else "running", job.name, job.run_dir)
        try:
            state, reason = run_one(job, error_dir)
        except KeyboardInterrupt:
            seen.append(True)
        if seen:
            outcome.states[job.name] = ("interrupted", "Ctrl-C")
            outcome.interrupted = True
            return
        outcome.states[job.name] = (state, reason)
        if state == "failed":
            log.error("%s failed: %s", job.name, reason)


@dataclass
class SlurmSettings:
    partition: str | None = None
    gpus: int = 1
    cpus: int = 10
    hours: float = 24.0
    mem: str | None = None
    account: str | None = None
    extra: dict = field(default_factory=dict)

    def parameters(self, job_name: str) -> dict:
        """submitit SlurmExecutor parameters of one job."""
        params = {"job_name": job_name, "gpus_per_node": self.gpus, "ntasks_per_node": 1,
                  "cpus_per_task": self.cpus, "time": int(round(self.hours * 60))}
        for key, value in (("partition", self.partition), ("mem", self.mem), ("account", self.account)):
            if value is not None:
                params[key] = value
        params.update(self.extra)
        return params


def slurm_specs(jobs: list[Job], settings: SlurmSettings) -> list[dict]:
    """What would be submitted, without submitting: per pending job the callable, its arguments and the
    SLURM parameters."""
    return [{"experiment": j.name, "function": run_job, "args": (*j.entry, j.argv),
             "parameters": settings.parameters(f"severe-{j.name.replace('/', '-')}")}
            for j in jobs if j.status != "done"]


# squeue states of a job that is waiting or still running (a rerun must not submit it again)
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
                           "SIGNALING", "STAGE_OUT"})


def _job_id_file(job: Job, log_dir: Path) -> Path:
    """Where the SLURM job id of ``job``'s last submission is kept: ``log_dir/jobs/<method>-<experiment>[-seedS]``."""
    return log_dir / "jobs" / "-".join(job.run_dir.relative_to(log_dir.parent.resolve()).parts)


def slurm_state(job_id: str) -> str | None:
    """The job's state as squeue reports it, or None when SLURM no longer knows the job."""
    try:
        proc = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    except FileNotFoundError:
        raise SevereError("--launcher slurm: squeue not found; run on a SLURM login node") from None
    if proc.returncode != 0:  # e.g. "Invalid job id specified": the job left the controller's memory
        return None
    return proc.stdout.strip() or None


def queued_slurm_jobs(jobs: list[Job], log_dir: Path) -> dict[str, str]:
    """Pending jobs whose earlier submission (from ``log_dir``) is still queued or running: name -> job id."""
    out = {}
    for j in jobs:
        id_file = _job_id_file(j, log_dir)
        if j.status != "done" and id_file.is_file():
            job_id = id_file.read_text().strip()
            if slurm_state(job_id) in ACTIVE_STATES:
                out[j.name] = job_id
    return out


def submit_slurm(jobs: list[Job], settings: SlurmSettings, log_dir: Path) -> dict[str, str]:
    """Submit one SLURM job per pending experiment (and seed) through submitit; returns its name -> job id.
    The job ids are kept under ``log_dir/jobs/`` (see :func:`queued_slurm_jobs`)."""
    import submitit
    from submitit.core.utils import FailedJobError

    try:
        executor = submitit.SlurmExecutor(folder=log_dir / "%j")
    except RuntimeError as e:
        raise SevereError(f"--launcher slurm: {e}") from None
    out: dict[str, str] = {}
    by_name = {j.name: j for j in jobs}
    for spec in slurm_specs(jobs, settings):
        executor.update_parameters(**spec["parameters"])
        try:
            job_id = executor.submit(spec["function"], *spec["args"]).job_id
        except FailedJobError as e:
            reason = " ".join(str(e).split()) or "no message"
            done = f"; submitted before it: {', '.join(f'{k} (job {v})' for k, v in out.items())}" if out else ""
            raise SevereError(f"--launcher slurm: sbatch refused {spec['experiment']}: {reason} (check --partition, "
                              f"--gpus (0 on a cluster without GPUs), --cpus, --mem, --account){done}") from None
        out[spec["experiment"]] = job_id
        atomic_write_text(_job_id_file(by_name[spec["experiment"]], log_dir), f"{job_id}\n")
    return out
