"""The SEVERE benchmark's summary score over the 8 columns of :data:`severe.experiments.SEVERE_COLUMNS`.

Labels, factors, directions and precision of every column come from the experiment table
(:mod:`severe.experiments`); experiments not listed there still appear in a report (labelled by their
id, grouped by the factor their results record).
"""

from __future__ import annotations

from typing import Mapping

from severe.experiments import EXPERIMENTS, SEVERE_COLUMNS


def severe_mean(values: Mapping[str, float | None]) -> float | None:
    """Mean of the 8 SEVERE-benchmark values (UCF-RC error e entering as 100 * (1 - e)); None when any is missing.

    ``values`` maps experiment ids to the table value (accuracy/mAP in %, UCF-RC error as a fraction).
    """
    picked = [values.get(c) for c in SEVERE_COLUMNS]
    if any(v is None for v in picked):
        return None
    return sum(EXPERIMENTS[c].score(float(v)) for c, v in zip(SEVERE_COLUMNS, picked)) / len(SEVERE_COLUMNS)
