"""``severe benchmark --launcher slurm`` against a real single-node SLURM cluster (tools/slurm/local_cluster.sh):
submit, cancel one job mid-run, rerun the same command, and get the local launcher's results.

Needs root (slurmd) and the distribution's SLURM packages. Skipped only when they cannot be had: not root, or
SLURM missing without apt-get to install it (as root with apt-get the cluster script installs slurm-wlm and
munge). Once SLURM is there, a cluster that does not start is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO


pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SCRIPT = REPO / "tools" / "slurm" / "local_cluster.sh"
SBIN_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING"}
# two cheap recognition experiments on the same synthetic data: a finetune (the one cancelled after its first
# epoch) and a linear probe; one thread per process keeps the 2-core machine fast and the numbers comparable.
# submitit ignores scancel's SIGTERM, so the run ends at the SIGKILL that follows (KillWait, 5 s); on a loaded
# machine the signal itself arrived ~11 s after the first checkpoint: 8 epochs of ~4 s keep the run going
# until then
EXPERIMENTS = ["hmdb51", "ucf101_linear"]
VICTIM = "hmdb51"
OVERRIDES = ["recognition:TRAIN.EPOCHS", "8", "TRAIN.BATCH_SIZE", "4", "DATA.NUM_FRAMES", "4", "DATA.CROP", "32",
             "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1", "DATA.TEST_CLIPS", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _script(env: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict:
    """Start the single-node cluster for this module (stopped afterwards); returns the environment that
    points client commands and ``severe`` at it."""
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root (slurmd); run as root or on CI")
    install: list[str] = []
    if shutil.which("slurmctld", path=SBIN_PATH) is None:
        if shutil.which("apt-get") is None:
            pytest.skip("SLURM is not installed and there is no apt-get to install it")
        install = ["--install"]
    folder = tmp_path_factory.mktemp("slurm_cluster")
    # free ports: a real slurmctld on this host, or another test session's cluster, is left alone
    env = {**os.environ, "SEVERE_SLURMCTLD_PORT": str(_free_port()), "SEVERE_SLURMD_PORT": str(_free_port()),
           "PATH": SBIN_PATH}
    started = _script(env, "start", str(folder), *install)
    assert started.returncode == 0, f"the local SLURM cluster did not start:\n{started.stdout}{started.stderr}"
    yield {**env, "SLURM_CONF": str(folder / "slurm.conf"), "OMP_NUM_THREADS": "1"}
    stopped = _script(env, "stop", str(folder), timeout=120)
    assert stopped.returncode == 0, stopped.stderr


def _benchmark(args: list, env: dict, cwd: Path) -> str:
    """Run ``severe benchmark`` with the venv's console script; returns stdout (fails the test on exit != 0)."""
    severe = Path(sys.executable).with_name("severe")
    proc = subprocess.run([str(severe), "benchmark", *map(str, args)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _submitted(stdout: str) -> dict[str, str]:
    return json.loads(stdout[stdout.index("{"):])["submitted"]


def _states(job_ids: list[str], env: dict) -> dict[str, str]:
    """Job id -> SLURM state (finished jobs stay listed for MinJobAge; no accounting database needed)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def _wait(job_ids: list[str], env: dict, timeout: float = 300) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = _states(job_ids, env)
        if len(states) == len(job_ids) and not ACTIVE & set(states.values()):
            return states
        time.sleep(1)
    raise AssertionError(f"SLURM jobs still active after {timeout}s: {_states(job_ids, env)}")


def _job_log(out: Path, job_id: str) -> str:
    return "\n".join(p.read_text() for p in sorted((out / "slurm_logs" / job_id).glob("*.out")) + sorted(
        (out / "slurm_logs" / job_id).glob("*.err")))


def _metrics(run_dir: Path) -> dict:
    record = json.loads((run_dir / "results.json").read_text())
    return {"metrics": record["metrics"], "primary": record["primary"], "seed": record["seed"],
            "final_train_loss": record["train"]["final_train_loss"]}


def test_slurm_benchmark_survives_scancel_and_matches_local(cluster, synthetic_root, tmp_path):
    env = cluster
    root = synthetic_root
    common = ["--init", "scratch", "--data-root", root, "--suite", "domains", "--only", *EXPERIMENTS, "--no-progress",
              *OVERRIDES]
    slurm_out = tmp_path / "slurm"
    slurm = [*common, "--out", slurm_out, "--launcher", "slurm", "--gpus", "0", "--cpus", "1", "--hours", "0.5"]

    # a request the cluster cannot satisfy (a GPU on a node without any) is one line naming sbatch's reason
    refused = subprocess.run([str(Path(sys.executable).with_name("severe")), "benchmark", *map(str, common), "--out",
                              str(tmp_path / "refused"), "--launcher", "slurm", "--gpus", "1", "--cpus", "1"], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "sbatch refused hmdb51: sbatch: error: Invalid generic resource" in refused.stderr

    first = _submitted(_benchmark(slurm, env, tmp_path))
    assert sorted(first) == sorted(EXPERIMENTS)
    # the same command while they wait or run submits nothing twice; a job that ended meanwhile (the linear
    # probe takes seconds, the command longer on a loaded machine or next to another test worker) is done
    again = json.loads((out := _benchmark(slurm, env, tmp_path))[out.index("{"):])
    assert again["submitted"] == {} and again["already queued or running"].items() <= first.items(), again
    for name in first.keys() - again["already queued or running"].keys():
        assert (slurm_out / "scratch" / name / "results.json").is_file(), (name, again)
    # the local reference runs meanwhile (same seeds, same code, same thread count)
    local = subprocess.Popen([str(Path(sys.executable).with_name("severe")), "benchmark", *map(str, common), "--out",
                              str(tmp_path / "local")], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        victim = slurm_out / "scratch" / VICTIM
        deadline = time.monotonic() + 240
        checked = time.monotonic()
        while not (victim / "checkpoint_last.pt").exists():  # the first epoch is done: cancel mid-run
            if time.monotonic() - checked > 5:  # squeue can take seconds on a loaded machine: not on every poll
                state = _states([first[VICTIM]], env).get(first[VICTIM])
                assert state in ACTIVE and time.monotonic() < deadline, \
                    f"{VICTIM} ended ({state}) before its first checkpoint:\n{_job_log(slurm_out, first[VICTIM])}"
                checked = time.monotonic()
            time.sleep(0.05)
        subprocess.run(["scancel", first[VICTIM]], env=env, check=True)
        states = _wait(list(first.values()), env)
        assert states == {first[VICTIM]: "CANCELLED",
                          first["ucf101_linear"]: "COMPLETED"}, {k: _job_log(slurm_out, k) for k in states}
        assert not (victim / "results.json").exists()
        assert (slurm_out / "scratch" / "ucf101_linear" / "results.json").is_file()

        # the same command again: the finished experiment is skipped, the cancelled one resumed from its checkpoint
        rerun = _benchmark(slurm, env, tmp_path)
        assert "2 runs, 1 done, 1 to resume" in rerun
        second = _submitted(rerun)
        assert list(second) == [VICTIM]
        assert _wait(list(second.values()), env) == {second[VICTIM]: "COMPLETED"}, _job_log(slurm_out, second[VICTIM])
        events = [json.loads(line)["event"] for line in (victim / "metrics.jsonl").read_text().splitlines()]
        assert "resume" in events, events

        assert local.wait(timeout=300) == 0, local.stdout.read()
    finally:
        if local.poll() is None:
            local.kill()
            local.wait()
    for name in EXPERIMENTS:
        assert _metrics(slurm_out / "scratch" / name) == _metrics(tmp_path / "local" / "scratch" / name), name
