"""The SEVERE benchmark's summary score over the 8 columns of :data:`severe.experiments.SEVERE_COLUMNS`.

Labels, factors, directions and precision of every column come from the experiment table
(:mod:`severe.experiments`); experiments not listed there still appear in a report (labelled by their
id, grouped by the factor their results record).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from severe.experiments import EXPERIMENTS, SEVERE_COLUMNS

#: how the footnote names a metric (a key of the results' ``metrics``); others are named by their key
METRIC_NAMES: dict[str, str] = {
    "video_top1": "top-1 video accuracy (%)",
    "mean_class_accuracy": "mean per-class accuracy (%)",
    "video_top5": "top-5 video accuracy (%)",
    "mAP": "mAP (%)",
    "mae": "mean relative count error as a fraction",
}


def severe_mean(values: Mapping[str, float | None]) -> float | None:
    """Mean of the 8 SEVERE-benchmark values (UCF-RC error e entering as 100 * (1 - e)); None when any is missing.

    ``values`` maps experiment ids to the table value (accuracy/mAP in %, UCF-RC error as a fraction).
    """
    picked = [values.get(c) for c in SEVERE_COLUMNS]
    if any(v is None for v in picked):
        return None
    return sum(EXPERIMENTS[c].score(float(v)) for c, v in zip(SEVERE_COLUMNS, picked)) / len(SEVERE_COLUMNS)


def metric_note(columns: Iterable, arrow: str, published: bool = False) -> str:
    """One footnote naming the metric of every column (``columns``: objects with ``label``, ``metric`` and
    ``higher_is_better``), grouped by metric in column order; ``published``: the published rows keep the paper's
    metric where the columns show another one."""
    groups: dict[str, list[str]] = {}
    for c in columns:
        name = METRIC_NAMES.get(c.metric, c.metric) if c.metric else "the records' primary metric"
        if not c.higher_is_better:
            name += f", {arrow} lower is better"
        groups.setdefault(name, []).append(c.label)
    text = "Metric of each column: " + "; ".join(f"{name}: {', '.join(labels)}" for name, labels in groups.items()) + "."
    if published:
        text += " Published rows show the paper's metric of each column."
    return text
