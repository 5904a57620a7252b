"""The experiments of the study and the suites that group them (one table, no if-chains).

Each experiment knows its command-line entry point and builds the argument list that runs it for one
initialisation into one run directory, so a local run, a SLURM job and a user typing the command do
exactly the same thing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from severe.errors import SevereError

REPO = Path(__file__).resolve().parents[2]
RECOGNITION_CONFIGS = REPO / "ssl_benchmark" / "configs"
SLOWFAST_CONFIGS = REPO / "SlowFast-ssl-vssl" / "configs"
REPETITION_CONFIGS = REPO / "Deep-Temporal-Repetition-Counting" / "configs"


@dataclass(frozen=True)
class Runner:
    """How a family of experiments is launched: entry function and argument convention."""

    name: str
    module: str
    function: str
    style: str  # "severe" (CONFIG --init --weights --data-root --out) or "slowfast" (--cfg FILE KEY VALUE)
    defaults: str  # "module:function" returning the config schema (to route KEY VALUE overrides)
    seed_key: str  # the config key of the run's one seed

    def config_keys(self) -> set[str]:
        """Every dotted key of this runner's config schema."""
        module, function = self.defaults.split(":")
        return set(_flatten(getattr(importlib.import_module(module), function)()))


def _flatten(node, prefix: str = "") -> list[str]:
    out = []
    for k, v in node.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    return out


RUNNERS = {
    "recognition": Runner("recognition", "severe.recognition.cli", "finetune_main", "severe",
                          "severe.recognition.config:recognition_defaults", "SEED"),
    "repetition": Runner("repetition", "severe.repetition.cli", "train_main", "severe",
                         "severe.repetition.config:repetition_defaults", "SEED"),
    "ava": Runner("ava", "severe.detection.cli", "main", "slowfast", "severe.slowfast_config:ava_defaults", "RNG_SEED"),
    "charades": Runner("charades", "severe.multilabel.cli", "main", "slowfast", "severe.slowfast_config:charades_defaults",
                       "RNG_SEED"),
}


def route_overrides(experiments: list["Experiment"], overrides: list[str]) -> dict[str, list[str]]:
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


@dataclass(frozen=True)
class Experiment:
    id: str
    factor: str
    runner: str  # key of RUNNERS
    config: Path

    def argv(self, method: str, weights: str | None, data_root: Path, run_dir: Path, *, resume: bool, trust: bool,
             overrides: list[str]) -> list[str]:
        """The command-line arguments of this experiment's entry point."""
        style = RUNNERS[self.runner].style
        flags = (["--resume"] if resume else []) + (["--trust"] if trust else []) + ["--no-progress"]
        if style == "severe":
            out = [str(self.config), "--init", method, "--data-root", str(data_root), "--out", str(run_dir), *flags]
            return out + (["--weights", str(weights)] if weights else []) + overrides
        opts = ["MODEL.INIT_METHOD", method, "DATA.PATH_TO_DATA_DIR", str(data_root), "OUTPUT_DIR", str(run_dir)]
        if weights:
            opts += ["MODEL.CKPT", str(weights)]
        return ["--cfg", str(self.config), *flags, *opts, *overrides]


def _rec(factor: str, name: str) -> tuple[str, str, Path]:
    return factor, "recognition", RECOGNITION_CONFIGS / f"{name}.yaml"


_TABLE: dict[str, tuple[str, str, Path]] = {
    # domain shift (finetuning) and linear probes
    **{ds: _rec("domain", f"domain/{ds}") for ds in ("ucf101", "ntu60", "gym99", "ssv2", "ek100", "hmdb51", "diving48")},
    **{f"{ds}_linear": _rec("linear", f"linear/{ds}") for ds in ("k400", "ucf101", "ntu60", "gym99", "ssv2")},
    # sample sizes
    **{f"{ds}_{n}": _rec("samples", f"samples/{ds}_{n}") for ds in ("ucf101", "gym99", "ntu60", "ssv2")
       for n in (1000, 2000, 4000, 8000)},
    # action granularity
    "gym99_granularity": _rec("granularity", "granularity/gym99"),
    **{ds: _rec("granularity", f"granularity/{ds}") for ds in ("gym288", "gym_vault", "gym_floor", "gym_fx_s1", "gym_ub_s1")},
    # task shift
    "ucfrep": ("task", "repetition", REPETITION_CONFIGS / "ucfrep.yaml"),
    "charades": ("task", "charades", SLOWFAST_CONFIGS / "Charades" / "R2PLUS1D_18_32x8_112.yaml"),
    "ava": ("task", "ava", SLOWFAST_CONFIGS / "AVA" / "R2PLUS1D_18_32x2_112.yaml"),
    "arrow_of_time": _rec("task", "task/arrow_of_time"),
}
EXPERIMENTS: dict[str, Experiment] = {k: Experiment(k, f, r, c) for k, (f, r, c) in _TABLE.items()}

SUITES: dict[str, tuple[str, ...]] = {
    # the SEVERE benchmark: 8 columns, two per factor
    "severe": ("ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1", "ucfrep", "charades"),
    "domains": ("ucf101", "ntu60", "gym99", "ssv2", "ek100", "hmdb51", "diving48", "k400_linear", "ucf101_linear",
                "ntu60_linear", "gym99_linear", "ssv2_linear"),
    "samples": tuple(f"{ds}_{n}" for ds in ("ucf101", "gym99", "ntu60", "ssv2") for n in (1000, 2000, 4000, 8000)),
    "granularity": ("gym99_granularity", "gym288", "gym_vault", "gym_floor", "gym_fx_s1", "gym_ub_s1"),
    "tasks": ("ucfrep", "charades", "ava", "arrow_of_time"),
}
SUITES["full"] = tuple(dict.fromkeys(e for name in ("domains", "samples", "granularity", "tasks") for e in SUITES[name]))


def expand(suite: str, only: list[str] | None = None) -> list[Experiment]:
    """The experiments of ``suite`` in order (optionally restricted to the ids in ``only``)."""
    if suite not in SUITES:
        raise SevereError(f"unknown suite '{suite}'; known: {', '.join(SUITES)}")
    ids = list(SUITES[suite])
    if only:
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise SevereError(f"experiment(s) {', '.join(unknown)} are not in suite '{suite}' ({', '.join(ids)})")
        ids = [i for i in ids if i in only]
    return [EXPERIMENTS[i] for i in ids]
