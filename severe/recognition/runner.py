"""Recognition runs from Python (the demo, benchmarks, tests): thin calls into the one lifecycle
(severe.tasks.lifecycle) with the recognition task (severe.tasks.recognition)."""

from __future__ import annotations

from pathlib import Path

from severe.tasks import TASKS, lifecycle
from severe.tasks.recognition import CONFIG_DIR  # noqa: F401  (where named configs live)
from severe.tasks.schema import flag_overrides

Plan = lifecycle.Plan


def plan_run(config: str | Path, init: str, weights: str | Path | None, overrides: list[str] = (),
             trust: bool = False, force: list[str] = ()) -> Plan:
    """Resolve the config (defaults <- file <- ``force`` <- the init's exceptions <- overrides) and the weights."""
    flags = flag_overrides(init=init, weights=str(weights) if weights else None)
    return lifecycle.plan(TASKS["recognition"], config, [*overrides, *flags], trust=trust, force=force)


def run(plan: Plan, data_root: Path, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train (unless kNN) and test one experiment; returns the results record (written by rank 0)."""
    return lifecycle.run(plan, data_root, run_dir, resume=resume, progress=progress)


def retest_run(run_dir: Path, data_root: Path, progress: bool = True) -> dict:
    """Re-test a trained run directory: its own config, architecture and last-epoch weights only."""
    return lifecycle.retest(TASKS["recognition"], run_dir, data_root, progress=progress)
