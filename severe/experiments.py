"""The experiments of the study: one table read by ``severe benchmark`` (what to run) and ``severe report``
(how to show it), plus the suites that group them and the 8 columns of the SEVERE benchmark.

Each row: id (the results' ``experiment_id``), display label, factor, runner (recognition, repetition, ava,
charades; None = no runner in severe, a published column only), config (path under the packaged
``severe/configs``; None = nothing to run), mode (finetune, linear, knn), metric (the key of its results'
``metrics`` the SEVERE table shows for it, whatever the record's ``primary`` says: ``video_top1`` for the
recognition columns, ``mean_class_accuracy`` for the FineGym granularity columns, docs/protocol.md §4),
direction and decimals. Rows are in the paper's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from severe.configs import ROOT as CONFIG_ROOT
from severe.errors import SevereError

#: factor order of the tables (SEVERE's four factors, linear probes before the task factor as in SEVERE++)
FACTORS: tuple[str, ...] = ("domain", "samples", "granularity", "linear", "task")
FACTOR_LABELS: dict[str, str] = {"domain": "Domain", "samples": "Samples", "granularity": "Granularity",
                                 "linear": "Linear probe", "task": "Task"}


@dataclass(frozen=True)
class Experiment:
    """One experiment id: what runs it and how its number is shown."""

    id: str
    label: str
    factor: str
    runner: str | None  # recognition | repetition | ava | charades; None = not run by severe
    config: str | None  # path under severe/configs, e.g. "ssl_benchmark/domain/ucf101.yaml"; None = no config
    mode: str = "finetune"  # finetune | linear | knn
    metric: str | None = "video_top1"  # the key of the results' metrics the table shows (None: published only)
    higher_is_better: bool = True
    decimals: int = 1  # accuracies and mAP in percent: 1; error fractions: 3

    @property
    def config_path(self) -> Path | None:
        """The packaged config file (None for a row without one)."""
        return None if self.config is None else CONFIG_ROOT / self.config

    def score(self, value: float) -> float:
        """The value on a 0-100 'higher is better' scale (an error fraction e enters as 100 * (1 - e))."""
        return value if self.higher_is_better else 100.0 * (1.0 - value)


#: the recognition metrics a column can show (``severe report --metric``): option value -> results' metrics key
RECOGNITION_METRICS: dict[str, str] = {"top1": "video_top1", "mean_class": "mean_class_accuracy"}


def _rec(id: str, label: str, factor: str, config: str | None, mode: str = "finetune",
         metric: str = "video_top1") -> Experiment:
    """A recognition row (``metric`` in %); ``config`` under ssl_benchmark/ without .yaml."""
    return Experiment(id, label, factor, "recognition", config and f"ssl_benchmark/{config}.yaml", mode, metric)


def _published(id: str, label: str, metric: str | None = None, decimals: int = 1) -> Experiment:
    """A published task-factor column that severe does not run."""
    return Experiment(id, label, "task", None, None, metric=metric, decimals=decimals)


_DOMAIN = [("k400", "K400"), ("ucf101", "UCF101"), ("ntu60", "NTU60"), ("gym99", "Gym99"), ("ssv2", "SSv2"),
           ("ek100", "EK100"), ("hmdb51", "HMDB51"), ("diving48", "Diving48")]
_NO_FINETUNE_CONFIG = {"k400"}
_NO_LINEAR_CONFIG = {"ek100"}
_SAMPLES = [("ucf101", "UCF101"), ("gym99", "Gym99"), ("ntu60", "NTU60"), ("ssv2", "SSv2")]
_GRANULARITY = [("gym99_granularity", "Gym99 (all)", "gym99"), ("gym_vault", "Vault", "gym_vault"),
                ("gym_floor", "Floor", "gym_floor"), ("gym_fx_s1", "FX-S1", "gym_fx_s1"),
                ("gym_ub_s1", "UB-S1", "gym_ub_s1"), ("gym288", "Gym288", "gym288")]

EXPERIMENT_LIST: list[Experiment] = [
    *(_rec(ds, label, "domain", None if ds in _NO_FINETUNE_CONFIG else f"domain/{ds}") for ds, label in _DOMAIN),
    *(_rec(f"{ds}_{n}", f"{label} {n // 1000}k", "samples", f"samples/{ds}_{n}") for ds, label in _SAMPLES
      for n in (1000, 2000, 4000, 8000)),
    *(_rec(i, label, "granularity", f"granularity/{name}", metric="mean_class_accuracy")
      for i, label, name in _GRANULARITY),
    *(_rec(f"{ds}_linear", f"{label} LP", "linear", None if ds in _NO_LINEAR_CONFIG else f"linear/{ds}", "linear")
      for ds, label in _DOMAIN),
    _rec("ucf101_knn", "UCF101 kNN", "linear", "linear/ucf101_knn", "knn"),
    Experiment("ucfrep", "UCF-RC err", "task", "repetition", "repetition/ucfrep.yaml", metric="mae",
               higher_is_better=False, decimals=3),
    Experiment("charades", "Charades", "task", "charades", "slowfast/Charades/R2PLUS1D_18_32x8_112.yaml", metric="mAP"),
    Experiment("ava", "AVA", "task", "ava", "slowfast/AVA/R2PLUS1D_18_32x2_112.yaml", metric="mAP"),
    _rec("arrow_of_time", "Arrow of time", "task", "task/arrow_of_time"),
    _published("stal_in_domain", "STAL in-domain", "mAP", decimals=3),
    _published("tal_in_domain", "TAL in-domain"),
    _published("activitynet_tal", "ActivityNet TAL"),
]
EXPERIMENTS: dict[str, Experiment] = {e.id: e for e in EXPERIMENT_LIST}
#: position of each id in the paper's column order
ORDER: dict[str, int] = {e.id: i for i, e in enumerate(EXPERIMENT_LIST)}

#: the SEVERE benchmark, in the paper's column order (two per factor)
SEVERE_COLUMNS: tuple[str, ...] = ("ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1",
                                   "ucfrep", "charades")

SUITES: dict[str, tuple[str, ...]] = {
    "severe": SEVERE_COLUMNS,
    "domains": ("ucf101", "ntu60", "gym99", "ssv2", "ek100", "hmdb51", "diving48", "k400_linear", "ucf101_linear",
                "ntu60_linear", "gym99_linear", "ssv2_linear"),
    "samples": tuple(f"{ds}_{n}" for ds, _ in _SAMPLES for n in (1000, 2000, 4000, 8000)),
    "granularity": ("gym99_granularity", "gym288", "gym_vault", "gym_floor", "gym_fx_s1", "gym_ub_s1"),
    "tasks": ("ucfrep", "charades", "ava", "arrow_of_time"),
}
SUITES["full"] = tuple(dict.fromkeys(e for name in ("domains", "samples", "granularity", "tasks")
                                     for e in SUITES[name]))


def suite(name: str, only: list[str] | None = None) -> list[Experiment]:
    """The experiments of suite ``name`` in order (optionally restricted to the ids in ``only``)."""
    if name not in SUITES:
        raise SevereError(f"unknown suite '{name}'; known: {', '.join(SUITES)}")
    ids = list(SUITES[name])
    if only:
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise SevereError(f"experiment(s) {', '.join(unknown)} are not in suite '{name}' ({', '.join(ids)})")
        ids = [i for i in ids if i in only]
    return [EXPERIMENTS[i] for i in ids]


def factor_rank(factor: str) -> int:
    """Position of a factor in the table (unknown factors after the known ones)."""
    return FACTORS.index(factor) if factor in FACTORS else len(FACTORS)
