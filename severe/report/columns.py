"""The experiments a SEVERE table can show: display label, factor, direction, precision, expected mode.

One table (:data:`KNOWN`) in the paper's order; experiments not listed here still appear in a report
(labelled by their id, grouped by the factor their results record). The SEVERE benchmark is the 8
columns of :data:`SEVERE_COLUMNS`; :func:`severe_mean` is its summary score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: factor order of the tables (SEVERE's four factors, linear probes before the task factor as in SEVERE++)
FACTORS: tuple[str, ...] = ("domain", "samples", "granularity", "linear", "task")
FACTOR_LABELS: dict[str, str] = {"domain": "Domain", "samples": "Samples", "granularity": "Granularity",
                                 "linear": "Linear probe", "task": "Task"}


@dataclass(frozen=True)
class ColumnSpec:
    """A known experiment id and how its number is shown."""

    id: str
    label: str
    factor: str
    higher_is_better: bool = True
    mode: str = "finetune"
    decimals: int = 1  # accuracies and mAP in percent: 1; error fractions: 3

    def score(self, value: float) -> float:
        """The value on a 0-100 'higher is better' scale (an error fraction e enters as 100 * (1 - e))."""
        return value if self.higher_is_better else 100.0 * (1.0 - value)


def _samples(dataset: str, label: str) -> list[ColumnSpec]:
    return [ColumnSpec(f"{dataset}_{n}", f"{label} {n // 1000}k", "samples") for n in (1000, 2000, 4000, 8000)]


_DOMAIN = [("k400", "K400"), ("ucf101", "UCF101"), ("ntu60", "NTU60"), ("gym99", "Gym99"), ("ssv2", "SSv2"),
           ("ek100", "EK100"), ("hmdb51", "HMDB51"), ("diving48", "Diving48")]

KNOWN_LIST: list[ColumnSpec] = [
    *(ColumnSpec(i, label, "domain") for i, label in _DOMAIN),
    *_samples("ucf101", "UCF101"), *_samples("gym99", "Gym99"), *_samples("ntu60", "NTU60"), *_samples("ssv2", "SSv2"),
    ColumnSpec("gym99_granularity", "Gym99 (all)", "granularity"),
    ColumnSpec("gym_vault", "Vault", "granularity"),
    ColumnSpec("gym_floor", "Floor", "granularity"),
    ColumnSpec("gym_fx_s1", "FX-S1", "granularity"),
    ColumnSpec("gym_ub_s1", "UB-S1", "granularity"),
    ColumnSpec("gym288", "Gym288", "granularity"),
    *(ColumnSpec(f"{i}_linear", f"{label} LP", "linear", mode="linear") for i, label in _DOMAIN),
    ColumnSpec("ucf101_knn", "UCF101 kNN", "linear", mode="knn"),
    ColumnSpec("ucfrep", "UCF-RC err", "task", higher_is_better=False, decimals=3),
    ColumnSpec("charades", "Charades", "task"),
    ColumnSpec("ava", "AVA", "task"),
    ColumnSpec("arrow_of_time", "Arrow of time", "task"),
    ColumnSpec("stal_in_domain", "STAL in-domain", "task", decimals=3),
    ColumnSpec("tal_in_domain", "TAL in-domain", "task"),
    ColumnSpec("activitynet_tal", "ActivityNet TAL", "task"),
]
KNOWN: dict[str, ColumnSpec] = {c.id: c for c in KNOWN_LIST}
ORDER: dict[str, int] = {c.id: i for i, c in enumerate(KNOWN_LIST)}

#: the SEVERE benchmark, in the paper's column order (two per factor)
SEVERE_COLUMNS: tuple[str, ...] = ("ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1",
                                   "ucfrep", "charades")


def severe_mean(values: Mapping[str, float | None]) -> float | None:
    """Mean of the 8 SEVERE-benchmark values (UCF-RC error e entering as 100 * (1 - e)); None when any is missing.

    ``values`` maps experiment ids to the table value (accuracy/mAP in %, UCF-RC error as a fraction).
    """
    picked = [values.get(c) for c in SEVERE_COLUMNS]
    if any(v is None for v in picked):
        return None
    return sum(KNOWN[c].score(float(v)) for c, v in zip(SEVERE_COLUMNS, picked)) / len(SEVERE_COLUMNS)


def factor_rank(factor: str) -> int:
    """Position of a factor in the table (unknown factors after the known ones)."""
    return FACTORS.index(factor) if factor in FACTORS else len(FACTORS)
