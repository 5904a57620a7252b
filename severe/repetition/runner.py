"""UCF-RC runs from Python (tests, scripts): thin calls into the one lifecycle (severe.tasks.lifecycle)
with the repetition task (severe.tasks.repetition)."""

from __future__ import annotations

from pathlib import Path

from severe.tasks import TASKS, lifecycle
from severe.tasks.repetition import CONFIG_DIR  # noqa: F401  (where named configs live)
from severe.tasks.schema import flag_overrides

Plan = lifecycle.Plan


def plan_run(config: str | Path, init: str, weights: str | Path | None, overrides: list[str] = (),
             trust: bool = False) -> Plan:
    """Resolve the config (defaults <- file <- overrides) and the initial weights."""
    flags = flag_overrides(init=init, weights=str(weights) if weights else None)
    return lifecycle.plan(TASKS["repetition"], config, [*overrides, *flags], trust=trust)


def run(plan: Plan, data_root: Path, run_dir: Path, resume: bool = False, progress: bool = True,
        stop_after_epoch: int | None = None) -> dict | None:
    """Train and test one experiment; returns the results record (None when stopped early for tests)."""
    return lifecycle.run(plan, data_root, run_dir, resume=resume, progress=progress, stop_after_epoch=stop_after_epoch)


def retest_run(run_dir: Path, data_root: Path, progress: bool = True) -> dict:
    """Re-test a trained run directory: its own config, architecture and last-epoch weights only."""
    return lifecycle.retest(TASKS["repetition"], run_dir, data_root, progress=progress)
