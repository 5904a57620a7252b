"""One figure (matplotlib, Agg canvas) that reads without the table: per-factor grouped bars and a rank view.

Top: one panel per factor, one bar group per experiment, one bar per row (initialisation); published rows
share their method's colour, lighter and hatched. Everything is on a 0-100 'higher is better' scale:
the UCF-RC error e is drawn as 100·(1 − e) and labelled so. Bottom: the rank of every row in every
column as an annotated heatmap (1 = best), and the SEVERE mean per row.
"""

from __future__ import annotations

import io
import math
from itertools import groupby
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from severe.errors import SevereError
from severe.io import atomic_write
from severe.experiments import FACTOR_LABELS
from severe.report.render import fmt
from severe.report.table import Column, Report, Row

FORMATS = ("png", "pdf", "svg")
_HATCH = "///"


def _colours(rows: list[Row]) -> dict[str, tuple]:
    """One colour per initialisation (user and published rows of a method share it)."""
    inits = list(dict.fromkeys(r.init for r in rows))
    palette = [colormaps["tab10"](i) for i in range(10)] + [colormaps["tab20b"](i) for i in range(20)]
    return {m: palette[i % len(palette)] for i, m in enumerate(inits)}


def _tick_label(col: Column) -> str:
    return col.label if col.higher_is_better else f"{col.label}\n100·(1−err)"


def _score(col: Column, value: float) -> float:
    return value if col.higher_is_better else 100.0 * (1.0 - value)


def _bars(ax, report: Report, cols: list[Column], colours: dict[str, tuple], title: str) -> None:
    n = len(report.rows)
    width = 0.8 / max(n, 1)
    x = np.arange(len(cols))
    for i, row in enumerate(report.rows):
        heights = [_score(c, row.cells[c.key].mean) if c.key in row.cells else np.nan for c in cols]
        ax.bar(x - 0.4 + width * (i + 0.5), heights, width, color=colours[row.init],
               alpha=0.45 if row.published else 1.0, hatch=_HATCH if row.published else None,
               edgecolor=colours[row.init] if row.published else "white", linewidth=0.5, label=row.label)
    ax.set_xticks(x, [_tick_label(c) for c in cols], fontsize=8)
    ax.set_xlim(-0.5, len(cols) - 0.5)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10, fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _rank_heatmap(ax, report: Report) -> None:
    labels = [c.label for c in report.columns] + ["Mean rank"]
    ranks = np.full((len(report.rows), len(labels)), np.nan)
    for i, row in enumerate(report.rows):
        for j, col in enumerate(report.columns):
            ranks[i, j] = row.ranks.get(col.key, np.nan)
        ranks[i, -1] = row.mean_rank if row.mean_rank is not None else np.nan
    cmap = colormaps["RdYlGn_r"].with_extremes(bad="#dddddd")
    norm = Normalize(vmin=1, vmax=max(len(report.rows), 2))
    ax.imshow(np.ma.masked_invalid(ranks), cmap=cmap, norm=norm, aspect="auto")
    for i in range(ranks.shape[0]):
        for j in range(ranks.shape[1]):
            v = ranks[i, j]
            text = "–" if math.isnan(v) else (fmt(v, 1) if j == ranks.shape[1] - 1 or v != int(v) else str(int(v)))
            dark = not math.isnan(v) and abs(norm(v) - 0.5) > 0.35
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black",
                    fontweight="bold" if j == ranks.shape[1] - 1 else "normal")
    ax.axvline(len(report.columns) - 0.5, color="black", linewidth=1.5)
    ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=30, ha="right")
    ax.set_yticks(range(len(report.rows)), [r.label for r in report.rows], fontsize=8)
    ax.set_title("Rank per column among the rows shown (1 = best; – = no result)", fontsize=10, fontweight="bold")


def _mean_bars(ax, report: Report, colours: dict[str, tuple]) -> None:
    y = np.arange(len(report.rows))
    for i, row in enumerate(report.rows):
        if row.mean is None:
            ax.text(1, i, "incomplete (needs all 8)", va="center", fontsize=8, color="grey")
            continue
        ax.barh(i, row.mean, color=colours[row.init], alpha=0.45 if row.published else 1.0,
                hatch=_HATCH if row.published else None, edgecolor=colours[row.init], height=0.7)
        ax.text(row.mean + 1, i, fmt(row.mean, 2), va="center", fontsize=8)
    ax.set_yticks(y, [""] * len(y))
    ax.set_ylim(len(report.rows) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_title("SEVERE mean (8 benchmark columns)", fontsize=10, fontweight="bold")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def make_figure(report: Report) -> Figure:
    """The matplotlib figure of a report (Agg canvas; no pyplot state is touched)."""
    if not report.columns:
        raise SevereError("nothing to plot: the report has no columns")
    groups = [(f, list(cols)) for f, cols in groupby(report.columns, key=lambda c: c.factor)]
    n_rows, n_cols = len(report.rows), len(report.columns)
    bar_width_in = max(1.0, 0.12 * n_rows) * n_cols
    width = min(max(10.0, bar_width_in + 1.5 * len(groups), 0.75 * n_cols + 6), 40.0)
    heat_h = max(2.5, 0.32 * n_rows + 1.5)
    fig = Figure(figsize=(width, 4.2 + heat_h + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(2, 1, height_ratios=[4.2, heat_h])
    top = outer[0].subgridspec(1, len(groups), width_ratios=[len(c) for _, c in groups])
    colours = _colours(report.rows)
    for k, (factor, cols) in enumerate(groups):
        ax = fig.add_subplot(top[0, k])
        _bars(ax, report, cols, colours, FACTOR_LABELS.get(factor, factor))
        if k == 0:
            ax.set_ylabel("accuracy / mAP (%)\n(UCF-RC: 100·(1−err))", fontsize=9)
    bottom = outer[1].subgridspec(1, 2, width_ratios=[max(n_cols + 1, 3), 3])
    _rank_heatmap(fig.add_subplot(bottom[0, 0]), report)
    _mean_bars(fig.add_subplot(bottom[0, 1]), report, colours)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", ncol=1 if n_rows <= 24 else 2, fontsize=8, frameon=False,
               title="initialisation", title_fontsize=9)
    title = "SEVERE benchmark" if report.view == "severe" else "All experiments"
    if report.reference_set:
        title += " (hatched: published SEVERE++ numbers)"
    fig.suptitle(title, fontsize=12, fontweight="bold")
    return fig


def plot_report(report: Report, path: str | Path) -> Path:
    """Write the figure to ``path`` (png, pdf or svg by suffix), atomically."""
    path = Path(path)
    fmt_name = path.suffix.lower().lstrip(".")
    if fmt_name not in FORMATS:
        raise SevereError(f"{path}: plot format '{path.suffix}' not supported; use a .png, .pdf or .svg file name")
    buf = io.BytesIO()
    make_figure(report).savefig(buf, format=fmt_name, dpi=120)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
