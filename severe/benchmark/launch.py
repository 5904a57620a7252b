"""Run the expanded experiments: one after another in this process, or one SLURM job each (submitit)."""

from __future__ import annotations

import importlib
import logging
import shlex
import subprocess
import sys
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
    status: str  # "done" (results exist), "resume" (unfinished run found), "new"
    seed: int | None = None  # set by --seeds; None = the config's own seed

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
              trust: bool, overrides: dict[str, list[str]], seeds: list[int] | None = None) -> list[Job]:
    """A job per experiment in ``out/<method>/<experiment>`` (with ``seeds``: per experiment and seed in
    ``out/<method>/<experiment>/seed<S>``, the seed set through the runner's seed key); finished ones are
    marked done (skipped)."""
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
            if (run_dir / RESULTS_FILE).exists():
                status = "done"
            elif run_dir.exists() and any(run_dir.iterdir()):
                status = "resume"
            else:
                status = "new"
            argv = experiment_argv(e, method, weights, data_root, run_dir, resume=status == "resume", trust=trust,
                                   overrides=extra + ([] if seed is None else [seed_key, str(seed)]))
            jobs.append(Job(e, run_dir, argv, status, seed))
    return jobs


def run_job(module: str, function: str, argv: list[str]) -> int:
    """Call an experiment's entry point (also what a SLURM job runs)."""
    from severe.cli import run_entry

    return run_entry(getattr(importlib.import_module(module), function), argv, f"{module}.{function}")


def run_local(jobs: list[Job], progress: bool = True) -> dict[str, str]:
    """Run pending jobs one after another; a failing experiment is reported and the others still run."""
    outcome: dict[str, str] = {}
    pending = [j for j in jobs if j.status != "done"]
    for j in jobs:
        if j.status == "done":
            outcome[j.name] = "skipped (results.json exists)"
    bar = tqdm(pending, desc="experiments", unit="exp", disable=not progress)
    for job in bar:
        bar.set_postfix_str(job.name)
        log.info("%s %s -> %s", "resuming" if job.status == "resume" else "running", job.name, job.run_dir)
        code = run_job(*job.entry, job.argv)
        outcome[job.name] = "ok" if code == 0 else f"failed (exit {code}; see {job.run_dir})"
    return outcome


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
