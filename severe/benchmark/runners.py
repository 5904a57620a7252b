"""How the experiments of :mod:`severe.experiments` are launched: one runner per task, no if-chains.

Each runner knows its command-line entry point and :func:`experiment_argv` builds the argument list that runs
an experiment for one initialisation into one run directory, so a local run, a SLURM job and a user typing
the command do exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from severe.errors import SevereError
from severe.experiments import Experiment


@dataclass(frozen=True)
class Runner:
    """How a family of experiments is launched: its entry function and the task whose schema it reads.

    Every entry point takes one command form (``CONFIG --init M [--weights W] --data-root D --out O
    [KEY VALUE ...]``) and one seed key (``SEED``); AVA and Charades also accept PySlowFast's key names."""

    name: str
    module: str
    function: str
    task: str  # key of severe.tasks.TASKS (its defaults route KEY VALUE overrides)
    seed_key: str = "SEED"

    def config_keys(self) -> set[str]:
        """Every dotted key of this runner's config schema, plus the PySlowFast aliases it accepts."""
        from severe.tasks import TASKS
        from severe.tasks.schema import SLOWFAST_ALIASES

        keys = set(_flatten(TASKS[self.task].defaults()))
        if self.task in ("ava", "charades"):
            keys |= {alias for alias, name in SLOWFAST_ALIASES.items() if name in keys}
        return keys

    def names_of(self, key: str) -> set[str]:
        """``key`` and every other name of the same setting (internal name and aliases)."""
        from severe.tasks.schema import SLOWFAST_ALIASES

        internal = SLOWFAST_ALIASES.get(key, key)
        return {internal, *(a for a, n in SLOWFAST_ALIASES.items() if n == internal)}


def _flatten(node, prefix: str = "") -> list[str]:
    out = []
    for k, v in node.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    return out


RUNNERS = {
    "recognition": Runner("recognition", "severe.recognition.cli", "finetune_main", "recognition"),
    "repetition": Runner("repetition", "severe.repetition.cli", "train_main", "repetition"),
    "ava": Runner("ava", "severe.detection.cli", "main", "ava"),
    "charades": Runner("charades", "severe.multilabel.cli", "main", "charades"),
}


def route_overrides(experiments: list[Experiment], overrides: list[str]) -> dict[str, list[str]]:
    """Split ``KEY VALUE`` pairs per experiment: ``RUNNER:KEY`` (e.g. ``recognition:TRAIN.EPOCHS``) goes to
    that runner's experiments only; a plain ``KEY`` to every experiment whose config has the key. A key no
    selected experiment knows is an error."""
    if len(overrides) % 2:
        raise SevereError(f"overrides come in KEY VALUE pairs; got an odd list: {' '.join(overrides)}")
    keys = {name: RUNNERS[name].config_keys() for name in {e.runner for e in experiments}}
    routed: dict[str, list[str]] = {e.id: [] for e in experiments}
    for key, value in zip(overrides[::2], overrides[1::2]):
        runner, _, bare = key.rpartition(":")
        if runner and runner not in RUNNERS:
            raise SevereError(f"override {key}: unknown runner '{runner}' (use one of {', '.join(RUNNERS)})")
        targets = [e for e in experiments if (not runner or e.runner == runner) and bare in keys[e.runner]]
        if not targets:
            raise SevereError(f"override {key}: no selected experiment has the config key '{bare}'")
        for e in targets:
            routed[e.id] += [bare, value]
    return routed


def experiment_argv(experiment: Experiment, method: str, weights: str | None, data_root: Path, run_dir: Path, *,
                    resume: bool, trust: bool, overrides: list[str]) -> list[str]:
    """The command-line arguments of ``experiment``'s entry point (one form for every task)."""
    flags = (["--resume"] if resume else []) + (["--trust"] if trust else []) + ["--no-progress"]
    out = [str(experiment.config_path), "--init", method, "--data-root", str(data_root), "--out", str(run_dir), *flags]
    return out + (["--weights", str(weights)] if weights else []) + overrides
