"""The SEVERE table as data: columns grouped by factor, one row per initialisation (plus published rows),
the SEVERE mean and the mean rank. Formatting lives in :mod:`severe.report.render`.

Rows: one per initialisation and, where it is not R(2+1)D-18, backbone (``tubelet_contrast_i3d (i3d)``; see
:func:`severe.report.collect.row_key`), in the method table's order.

Columns: the ``severe`` view is always the 8 SEVERE-benchmark columns (missing cells stay missing); the
``all`` view is every experiment found in the results, grouped by factor (domain, samples, granularity,
linear, task) in the paper's order. A run whose mode is not its experiment's usual one (e.g. the
``ucf101`` config run as a linear probe) gets its own column, ``ucf101 (linear)``, never mixed in.

Values: each column shows the metric the experiment table names for it (``Experiment.metric``; the FineGym
granularity columns mean per-class accuracy, the other recognition columns top-1 video accuracy), read from
each record's ``metrics`` whatever its ``primary`` says, so records written before that choice show the right
number; ``metric`` (``severe report --metric``) shows another recognition metric in every recognition column.

Ranks: per shown column among the rows shown (1 = best, direction from ``higher_is_better``, ties share
the average rank); a row's mean rank averages the columns it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from severe.checkpoints.methods import INIT_ORDER, METHODS
from severe.errors import SevereError
from severe.report.collect import Cell, Collection, Run, aggregate, collect
from severe.experiments import EXPERIMENTS, ORDER, RECOGNITION_METRICS, SEVERE_COLUMNS, factor_rank
from severe.report.columns import metric_note, severe_mean
from severe.results import read_results
from severe.models.vit import backbone_kind
from severe.report.reference import REFERENCE_SETS, ReferenceMethod, load_reference

VIEWS = ("severe", "all")
PUBLISHED_SUFFIX = " (published)"
_TIE = 1e-9


@dataclass(frozen=True)
class Column:
    key: str  # experiment id, or "id (mode)" for an unusual mode
    experiment_id: str
    mode: str
    label: str
    factor: str
    higher_is_better: bool
    decimals: int
    metric: str | None = None  # the key of the results' metrics shown (None: the records' primary metric)


@dataclass
class Row:
    key: str
    label: str
    init: str
    published: bool
    cells: dict[str, Cell]  # column key -> cell (every cell the row has, shown or not)
    mean: float | None = None  # SEVERE mean
    ranks: dict[str, float] = field(default_factory=dict)  # shown column key -> rank
    mean_rank: float | None = None
    backbone: str | None = None  # the results' init.arch (user rows) or the published backbone
    family: str = "CNN"  # CNN / ViT: the backbone registry's family (user rows) or the published row's


@dataclass
class Report:
    columns: list[Column]
    rows: list[Row]
    view: str
    reference_set: str | None = None
    reference_source: str | None = None
    hidden: list[str] = field(default_factory=list)  # found column keys the view does not show
    metric_override: str | None = None  # --metric: the recognition metric every recognition column shows

    def metric_note(self, arrow: str) -> str:
        """The footnote naming the metric of each shown column."""
        return metric_note(self.columns, arrow, published=self.reference_set is not None and
                           any(c.metric != _table_metric(c.experiment_id) for c in self.columns))

    @property
    def show_family(self) -> bool:
        """Whether the text tables get a Family column: only when a ViT row is shown (CNN tables stay as published)."""
        return any(r.family != "CNN" for r in self.rows)

    def cell(self, row_label: str, column_key: str) -> Cell | None:
        return self.row(row_label).cells.get(column_key)

    def row(self, label: str) -> Row:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def to_markdown(self) -> str:
        from severe.report.render import to_markdown
        return to_markdown(self)

    def to_csv(self) -> str:
        from severe.report.render import to_csv
        return to_csv(self)

    def to_latex(self) -> str:
        from severe.report.render import to_latex
        return to_latex(self)


# ------------------------------------------------------------------------------------------- columns

def _table_metric(experiment_id: str) -> str | None:
    spec = EXPERIMENTS.get(experiment_id)
    return spec.metric if spec else None


def column_metric(experiment_id: str, override: str | None = None, primary: str | None = None) -> str | None:
    """The metrics key a column shows: the experiment table's (else the records' ``primary``), or the recognition
    metric ``override`` (a key of RECOGNITION_METRICS) where the column shows a recognition metric."""
    if override is not None and override not in RECOGNITION_METRICS:
        raise SevereError(f"unknown metric '{override}'; use one of {', '.join(RECOGNITION_METRICS)}")
    metric = _table_metric(experiment_id) or primary
    if override is not None and metric in RECOGNITION_METRICS.values():
        return RECOGNITION_METRICS[override]
    return metric


def _column(experiment_id: str, mode: str, factor: str, higher_is_better: bool, own_column: bool,
            metric: str | None = None) -> Column:
    """``own_column``: the mode is not the experiment's usual one, so it is shown apart; ``metric`` the metrics key
    shown (default: the experiment table's)."""
    spec = EXPERIMENTS.get(experiment_id)
    label = spec.label if spec else experiment_id
    decimals = spec.decimals if spec else (1 if higher_is_better else 3)
    key = f"{experiment_id} ({mode})" if own_column else experiment_id
    return Column(key, experiment_id, mode, f"{label} ({mode})" if own_column else label, factor, higher_is_better,
                  decimals, metric if metric is not None else _table_metric(experiment_id))


def _found_columns(collection: Collection, metric: str | None = None,
                   primaries: dict[str, str] | None = None) -> dict[tuple[str, str], Column]:
    modes: dict[str, set[str]] = {}
    for exp, mode in collection.experiments:
        modes.setdefault(exp, set()).add(mode)
    out = {}
    for (exp, mode), info in collection.experiments.items():
        spec = EXPERIMENTS.get(exp)
        own = mode != spec.mode if spec else len(modes[exp]) > 1
        shown = column_metric(exp, metric, (primaries or {}).get(exp))
        out[(exp, mode)] = _column(exp, mode, info.factor, info.higher_is_better, own, shown)
    return out


def _severe_columns(metric: str | None = None) -> list[Column]:
    specs = [EXPERIMENTS[c] for c in SEVERE_COLUMNS]
    return [_column(s.id, s.mode, s.factor, s.higher_is_better, False, column_metric(s.id, metric)) for s in specs]


# ------------------------------------------------------------------------------------------- values

def shown_value(run: Run, metric: str | None) -> float:
    """The table value of ``run`` for the column showing ``metric``: ``primary.value`` when that is the metric
    (or ``metric`` is None), else ``metrics[metric]`` of its record (a fraction, shown in % like the primary)."""
    if metric is None:
        return run.value
    data = read_results(run.path)
    primary = data["primary"].get("metric") if isinstance(data["primary"], dict) else None
    if primary == metric:
        return run.value
    metrics = data.get("metrics")
    value = metrics.get(metric) if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SevereError(f"{run.path}: the table shows '{metric}' for '{run.experiment_id}' but the record's metrics "
                          f"have no number under that key (got {value!r}); re-test the run with this version of severe")
    if not run.higher_is_better:
        return float(value)
    if not 0.0 <= value <= 1.0:
        raise SevereError(f"{run.path}: metrics.{metric} = {value} is not a fraction in [0, 1]")
    return round(100.0 * float(value), 4)


def _primary_metrics(collection: Collection) -> dict[str, str]:
    """experiment id -> the primary metric its records name (for experiments outside the table)."""
    out: dict[str, str] = {}
    for run in collection.runs:
        if run.experiment_id not in EXPERIMENTS and run.experiment_id not in out:
            primary = read_results(run.path)["primary"]
            if isinstance(primary, dict) and isinstance(primary.get("metric"), str):
                out[run.experiment_id] = primary["metric"]
    return out


def with_shown_metric(collection: Collection, metric: str | None = None) -> Collection:
    """``collection`` with every value replaced by the one its column shows (see :func:`shown_value`)."""
    primaries = _primary_metrics(collection)
    runs = [replace(r, value=shown_value(r, column_metric(r.experiment_id, metric, primaries.get(r.experiment_id))))
            for r in collection.runs]
    return replace(collection, runs=runs, cells=aggregate(runs).cells)  # whatever else it holds is kept


def _sort_key(c: Column) -> tuple:
    return factor_rank(c.factor), c.factor, ORDER.get(c.experiment_id, math.inf), c.experiment_id, c.mode


# ------------------------------------------------------------------------------------------- rows

def _user_rows(collection: Collection, found: dict[tuple[str, str], Column]) -> list[Row]:
    rows: dict[str, Row] = {}
    for (key, exp, mode), cell in collection.cells.items():
        init, arch = collection.rows.get(key, (key, None))
        row = rows.setdefault(key, Row(key, key, init, False, {}, backbone=arch, family=row_family(init, arch)))
        row.cells[found[(exp, mode)].key] = cell
    order = {m: i for i, m in enumerate(INIT_ORDER)}  # the method table's order; others follow alphabetically
    return sorted(rows.values(), key=lambda r: (order.get(r.init, len(order)), r.init, r.key))


#: published family (reference data) -> the report's family
PUBLISHED_FAMILIES = {"cnn": "CNN", "vit": "ViT", "video_text": "ViT"}
#: report families -> the published set ``--reference`` adds by default
DEFAULT_REFERENCE_SETS = {frozenset({"CNN"}): "cnn", frozenset({"ViT"}): "vit"}


def row_family(init: str, arch: str | None) -> str:
    """CNN / ViT of a user row: its recorded architecture, else the method table's; R(2+1)D-18 (CNN) when neither
    is known (results without an architecture are of the benchmark's default backbone)."""
    arch = arch or (METHODS[init].arch if init in METHODS else None)
    return backbone_kind(arch) or "CNN"


def default_reference_set(user: list[Row]) -> str:
    """``--reference`` without a set: the published rows of the families found (CNN -> cnn, ViT -> vit, both -> all)."""
    return DEFAULT_REFERENCE_SETS.get(frozenset(r.family for r in user) or frozenset({"CNN"}), "all")


def _published_row(m: ReferenceMethod) -> Row:
    label = m.id + PUBLISHED_SUFFIX
    return Row(label, label, m.id, True, {k: Cell(mean=v) for k, v in m.results.items()}, backbone=m.backbone,
               family=PUBLISHED_FAMILIES[m.family])


def _interleave(user: list[Row], published: list[Row]) -> list[Row]:
    """Each published row right after the user's row of the same method; the others after all user rows."""
    by_init = {r.init: r for r in published}
    out = []
    for r in user:
        out.append(r)
        if r.init in by_init:
            out.append(by_init.pop(r.init))
    return out + [r for r in published if r.init in by_init]


# ------------------------------------------------------------------------------------------- ranks

def average_ranks(values: list[float], higher_is_better: bool) -> list[float]:
    """Rank 1 = best; equal values (within 1e-9) share the average of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: -values[i] if higher_is_better else values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and abs(values[order[end + 1]] - values[order[start]]) <= _TIE:
            end += 1
        for i in order[start:end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _rank(rows: list[Row], columns: list[Column]) -> None:
    for col in columns:
        having = [r for r in rows if col.key in r.cells]
        for r, rank in zip(having, average_ranks([r.cells[col.key].mean for r in having], col.higher_is_better)):
            r.ranks[col.key] = rank
    for r in rows:
        r.mean_rank = sum(r.ranks.values()) / len(r.ranks) if r.ranks else None


# ------------------------------------------------------------------------------------------- build

def make_report(collection: Collection | None, columns: str = "severe", reference: bool | str | None = False,
                metric: str | None = None) -> Report:
    """Assemble the table from collected results (None: published rows only) and, optionally, published rows.
    Cell values are the collection's as given (see :func:`with_shown_metric`); ``metric`` names the columns'."""
    if columns not in VIEWS:
        raise SevereError(f"unknown column view '{columns}'; use one of {', '.join(VIEWS)}")
    column_metric("", metric)  # checks the name
    found = _found_columns(collection, metric, _primary_metrics(collection)) if collection is not None else {}
    user = _user_rows(collection, found) if collection is not None else []
    reference_set = (default_reference_set(user) if reference is True else reference) or None
    if reference_set is not None and reference_set not in REFERENCE_SETS:
        raise SevereError(f"unknown reference set '{reference_set}'; use one of {', '.join(REFERENCE_SETS)}")
    ref = load_reference() if reference_set else None
    published = [_published_row(m) for m in ref.select(reference_set)] if ref else []
    rows = _interleave(user, published)
    if not rows:
        raise SevereError("nothing to report: no results and no published rows")
    cols = _severe_columns(metric) if columns == "severe" else sorted(found.values(), key=_sort_key)
    for r in rows:
        r.mean = severe_mean({c: r.cells[c].mean for c in SEVERE_COLUMNS if c in r.cells})
    _rank(rows, cols)
    shown = {c.key for c in cols}
    hidden = [c.key for c in sorted(found.values(), key=_sort_key) if c.key not in shown]
    return Report(cols, rows, columns, reference_set, ref.source if ref else None, hidden, metric)


def build_report(dirs: Iterable[str | Path], reference: bool | str | None = False, columns: str = "severe",
                 metric: str | None = None) -> Report:
    """The SEVERE table of every ``results.json`` under ``dirs``.

    ``reference``: False, True (= the published rows of the families found: CNN, ViT or both), or a set name
    ``cnn`` / ``vit`` / ``all``;
    ``columns``: ``severe`` (the 8 benchmark columns) or ``all`` (every experiment found);
    ``metric``: None (each column's metric from the experiment table), ``top1`` or ``mean_class`` (every
    recognition column shows that one).
    """
    if columns not in VIEWS:
        raise SevereError(f"unknown column view '{columns}'; use one of {', '.join(VIEWS)}")
    column_metric("", metric)  # checks the name before reading anything
    return make_report(with_shown_metric(collect(dirs), metric), columns=columns, reference=reference, metric=metric)
