"""Whether an existing run directory may be reused by ``severe benchmark``, and how an experiment's config
resolves without running it (also what ``severe report`` compares a run with to mark protocol deviations).

A finished run (``results.json``) is reused only when its recorded config equals the requested one (every key
but the locations ``RUN.DATA_ROOT``/``RUN.OUT_DIR``; the weights by content, ``init.source_sha256``); an
unfinished one only when its ``config.yaml`` does. A results.json that cannot be read is never reused.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import yaml

from severe.errors import SevereError
from severe.experiments import Experiment

#: keys that say where a run reads, writes or finds its weights, not what it trains (the weights are
#: compared by content)
LOCATION_KEYS = ("RUN.DATA_ROOT", "RUN.OUT_DIR", "RUN.WEIGHTS")


def resolved_config(experiment: Experiment, method: str, overrides: Sequence[str] = ()) -> dict:
    """The config ``experiment`` runs with for ``method`` and ``KEY VALUE`` overrides, as its entry point
    resolves it (defaults <- file <- the method's protocol exceptions <- overrides), as a plain dict."""
    from severe.benchmark.runners import RUNNERS
    from severe.config import load_config, to_plain
    from severe.recognition.config import flatten_settings
    from severe.tasks import TASKS
    from severe.tasks.lifecycle import load_task_config

    task = TASKS[RUNNERS[experiment.runner].task]
    path = experiment.config_path
    rules = task.init_rules(method, load_config(task.defaults(), path, [], task.aliases))
    return to_plain(load_task_config(task, path, [*flatten_settings(rules), *overrides]))


@lru_cache(maxsize=None)
def protocol_config(experiment_id: str, method: str) -> dict | None:
    """The config of ``experiment_id`` as SEVERE specifies it for ``method`` (no overrides); None when the
    experiment has no packaged config or the method is unknown."""
    from severe.experiments import EXPERIMENTS

    e = EXPERIMENTS.get(experiment_id)
    if e is None or e.runner is None or e.config_path is None:
        return None
    try:
        return resolved_config(e, method)
    except Exception:  # noqa: BLE001 - an unknown method or a config this version cannot read: no protocol to compare
        return None


def flatten(node: dict, prefix: str = "") -> dict:
    """``{"A": {"B": 1}}`` -> ``{"A.B": 1}``."""
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_differences(recorded: dict, requested: dict, ignore: Sequence[str] = LOCATION_KEYS) -> list[str]:
    """``KEY recorded -> requested`` for every differing key (keys starting with ``ignore`` left out)."""
    a, b = flatten(recorded), flatten(requested)
    out = []
    for key in sorted(set(a) | set(b)):
        if key.startswith(tuple(ignore)) or a.get(key) == b.get(key):
            continue
        out.append(f"{key} {_show(a, key)} there, {_show(b, key)} requested")
    return out


def _show(values: dict, key: str) -> str:
    return repr(values[key]) if key in values else "(absent)"


def _summary(diffs: list[str]) -> str:
    return diffs[0] + (f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else "")


def weights_ids(path: str | Path, trust: bool = False) -> frozenset[str]:
    """The sha256 values a run made from ``path`` records as ``init.source_sha256``: the file's own, and for a
    converted file the one of the checkpoint it was converted from."""
    from severe.checkpoints.loading import read_checkpoint
    from severe.checkpoints.weights import is_converted
    from severe.io import sha256_file

    ids = {sha256_file(path)}
    try:
        obj = read_checkpoint(Path(path), trust=trust)
    except SevereError:  # a raw checkpoint that needs --trust: only its own hash
        return frozenset(ids)
    if is_converted(obj) and isinstance(obj["meta"].get("source_sha256"), str):
        ids.add(obj["meta"]["source_sha256"])
    return frozenset(ids)


def mismatch(run_dir: Path, status: str, requested: dict, method: str, weights: frozenset[str] | None) -> str | None:
    """Why the existing run in ``run_dir`` must not be reused for the requested config (None: it may be).

    ``status`` is the planned status (``done``: results.json exists; ``resume``: an unfinished run);
    ``weights``: :func:`weights_ids` of the requested weights (None for scratch)."""
    from severe.results import RESULTS_FILE, read_results
    from severe.tasks.lifecycle import CONFIG_FILE, INIT_FILE

    if status == "done":
        path = run_dir / RESULTS_FILE
        try:
            record = read_results(path)
        except SevereError as e:
            return str(e)
        config, init, name = record.get("config"), record.get("init"), RESULTS_FILE
        if record.get("init_method") != method:
            return f"{path} was recorded for init '{record.get('init_method')}', not '{method}'"
    else:
        path = run_dir / CONFIG_FILE
        if not path.is_file():
            return None  # killed before its config was written: nothing to compare, resumed afresh
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
            init = json.loads((run_dir / INIT_FILE).read_text(encoding="utf-8")) if (run_dir / INIT_FILE).is_file() else None
        except (OSError, ValueError, yaml.YAMLError) as e:
            return f"{path}: unreadable ({' '.join(str(e).split())})"
        name = f"unfinished run ({CONFIG_FILE})"
    if not isinstance(config, dict):
        return f"{path} records no config"
    diffs = config_differences(config, requested)
    if diffs:
        return f"{run_dir}: {name} differs from this command: {_summary(diffs)}"
    recorded_sha = init.get("source_sha256") if isinstance(init, dict) else None
    if weights is not None and recorded_sha is not None and recorded_sha not in weights:
        return f"{run_dir}: {name} was made from other weights (source sha256 {recorded_sha[:12]}...) than --weights"
    return None
