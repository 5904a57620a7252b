"""Run directories and the results record every experiment writes (one schema for all tasks)."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from severe.errors import SevereError
from severe.io import atomic_write_json
from severe.provenance import provenance

RESULTS_FILE, RETEST_FILE = "results.json", "retest.json"
SCHEMA_VERSION = 1


def results_target(run_dir: Path) -> Path:
    """Where testing a trained run writes its record: ``results.json`` when the run has none yet, else
    ``retest.json`` (a finished record is never overwritten)."""
    run_dir = Path(run_dir)
    return run_dir / (RETEST_FILE if (run_dir / RESULTS_FILE).exists() else RESULTS_FILE)


def prepare_run_dir(run_dir: Path, resume: bool) -> Path:
    """Create ``run_dir``; refuse a finished run, and an unfinished one unless resuming."""
    run_dir = Path(run_dir)
    if (run_dir / RESULTS_FILE).exists():
        raise SevereError(f"{run_dir} holds a finished run ({RESULTS_FILE} exists); choose another output directory")
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        raise SevereError(f"{run_dir} already holds an unfinished run; pass --resume to continue it or choose another output directory")
    from severe.io import check_writable

    return check_writable(run_dir)  # created; a read-only / full / not-a-folder location fails here, before training


def make_results(*, experiment_id: str, task: str, dataset: str, factor: str, mode: str, init_method: str,
                 metrics: dict[str, Any], primary_metric: str, primary_value: float, higher_is_better: bool,
                 seed: int, config: dict, data: dict, deviations: list[str], extra: dict | None = None) -> dict:
    """The results record. ``primary_value`` is the number the SEVERE table shows for this run
    (accuracy or mAP in percent; for repetition counting the error as a fraction)."""
    return {
        "schema": SCHEMA_VERSION,
        "experiment_id": experiment_id,
        "task": task,
        "dataset": dataset,
        "factor": factor,
        "mode": mode,
        "init_method": init_method,
        "primary": {"metric": primary_metric, "value": primary_value, "higher_is_better": higher_is_better},
        "metrics": metrics,
        "seed": seed,
        "data": data,
        "deviations": deviations,
        "config": config,
        "provenance": provenance(),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def write_results(run_dir: Path, results: dict) -> Path:
    return atomic_write_json(Path(run_dir) / RESULTS_FILE, results)


def read_results(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SevereError(f"{path}: not a readable results file ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION or "primary" not in data:
        raise SevereError(f"{path}: not a severe results file of schema {SCHEMA_VERSION}")
    return data
