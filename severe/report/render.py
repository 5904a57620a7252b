"""Text formats of a :class:`~severe.report.table.Report`: Markdown, CSV and LaTeX (booktabs).

Precision as in the paper: one decimal for accuracies and mAP, three for the UCF-RC error; the SEVERE
mean and the mean rank with two. Rounding is half-up on the decimal value (64.4875 -> 64.49).
"""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from itertools import groupby

from severe.report.collect import Cell
from severe.experiments import FACTOR_LABELS, SEVERE_COLUMNS
from severe.report.table import Column, Report, Row

MISSING = "–"
DEVIATES = "†"  # a cell from a run that deviates from the protocol (see _deviation_notes)
MEAN_HEADER, RANK_HEADER, FAMILY_HEADER = "SEVERE mean", "Mean rank", "Family"


def fmt(value: float, decimals: int) -> str:
    """Half-up rounding of ``value`` to ``decimals`` places, after removing binary noise below 1e-9
    (a mean such as 58.425 computed as 58.42499999999999 shows as 58.43)."""
    exact = Decimal(repr(float(value))).quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN)
    out = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return str(abs(out) if out.is_zero() else out)


def _factor_label(factor: str) -> str:
    return FACTOR_LABELS.get(factor, factor)


def _groups(report: Report) -> list[tuple[str, list[Column]]]:
    return [(f, list(cols)) for f, cols in groupby(report.columns, key=lambda c: c.factor)]


def _is_best(report: Report, row: Row, col: Column) -> bool:
    """Rank 1 in a column that at least two rows have."""
    return row.ranks.get(col.key) == 1.0 and sum(col.key in r.ranks for r in report.rows) > 1


def _mean_rank_text(report: Report, row: Row, with_count: bool) -> str:
    if row.mean_rank is None:
        return MISSING if with_count else ""
    text = fmt(row.mean_rank, 2)
    if with_count and len(row.ranks) < len(report.columns):
        text += f" ({len(row.ranks)}/{len(report.columns)})"
    return text


def _seed_counts(report: Report) -> set[int]:
    """The seed counts of the averaged (n > 1) cells."""
    return {c.n for r in report.rows for c in r.cells.values() if c.n > 1}


def _value_md(cell: Cell, col: Column, show_n: bool) -> str:
    text = fmt(cell.mean, col.decimals)
    if cell.n > 1 and cell.std is not None:
        text += f" ± {fmt(cell.std, col.decimals)}" + (f" (n={cell.n})" if show_n else "")
    return text


def _notes(report: Report, arrow: str, pm: str) -> list[str]:
    notes = [report.metric_note(arrow) + " Bold: best in the column.",
             f"SEVERE mean: mean of the 8 SEVERE-benchmark results ({', '.join(SEVERE_COLUMNS)}) with UCF-RC entering "
             f"as 100·(1 − error); {MISSING} unless the row has all 8.",
             "Mean rank: rank in each shown column among the rows shown (1 = best, ties share the average rank), "
             "averaged over the columns the row has; (k/N): ranked in k of the N columns. Ranks and bold use the "
             "unrounded values.",
             f"{MISSING}: no result."]
    counts = _seed_counts(report)
    if len(counts) == 1:
        notes.append(f"a {pm} s: mean {pm} sample standard deviation over {counts.pop()} seeds; a single value: one seed.")
    elif counts:
        notes.append(f"a {pm} s (n=k): mean {pm} sample standard deviation over k seeds; a single value: one seed.")
    notes += _deviation_notes(report)
    if report.reference_set:
        notes.append(f"Rows marked '(published)': {report.reference_source}")
    if report.hidden:
        notes.append(f"Also found but not in this view (see --columns all): {', '.join(report.hidden)}.")
    return notes


def _deviation_notes(report: Report) -> list[str]:
    """One note per row and set of deviations: which of its shown cells are marked and why."""
    notes = []
    for row in report.rows:
        groups: dict[tuple[str, ...], list[str]] = {}
        for col in report.columns:
            cell = row.cells.get(col.key)
            if cell is not None and cell.deviations:
                groups.setdefault(cell.deviations, []).append(col.label)
        for reasons, labels in groups.items():
            notes.append(f"{DEVIATES} {row.label}, {', '.join(labels)}: deviates from the SEVERE protocol — "
                         f"{'; '.join(reasons)}.")
    return notes


# ------------------------------------------------------------------------------------------- markdown

def to_markdown(report: Report) -> str:
    legend = " · ".join(f"{_factor_label(f)}: {', '.join(c.label for c in cols)}" for f, cols in _groups(report))
    family = [FAMILY_HEADER] if report.show_family else []
    header = ["Initialisation", *family, *(c.label + ("" if c.higher_is_better else " ↓") for c in report.columns),
              MEAN_HEADER, RANK_HEADER]
    lines = [f"Columns by factor — {legend}", "",
             "| " + " | ".join(header) + " |",
             "|:---|" + "---:|" * (len(header) - 1)]
    show_n = len(_seed_counts(report)) > 1
    for row in report.rows:
        cells = []
        for col in report.columns:
            cell = row.cells.get(col.key)
            text = _value_md(cell, col, show_n) if cell else MISSING
            text = f"**{text}**" if cell and _is_best(report, row, col) else text
            cells.append(text + (f" {DEVIATES}" if cell and cell.deviations else ""))
        mean = fmt(row.mean, 2) if row.mean is not None else MISSING
        lines.append("| " + " | ".join([row.label, *([row.family] if family else []), *cells, mean,
                                        _mean_rank_text(report, row, True)]) + " |")
    lines.append("")
    lines += [f"- {n}" for n in _notes(report, "↓", "±")]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- csv

def to_csv(report: Report) -> str:
    """One line per row: values at table precision, empty when missing; columns named by experiment id; last, the
    backbone (the results' architecture id, or the published row's backbone; empty when not recorded) and its family
    (CNN / ViT)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "init", "published", *(c.key for c in report.columns), "severe_mean", "mean_rank", "ranked_columns",
                "backbone", "family"])
    for row in report.rows:
        values = [fmt(row.cells[c.key].mean, c.decimals) if c.key in row.cells else "" for c in report.columns]
        w.writerow([row.label, row.init, "true" if row.published else "false", *values,
                    fmt(row.mean, 2) if row.mean is not None else "", _mean_rank_text(report, row, False),
                    len(row.ranks), row.backbone or "", row.family])
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- latex

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(report: Report) -> str:
    """A booktabs ``tabular`` with a factor header row (needs ``\\usepackage{booktabs}``)."""
    groups = _groups(report)
    family = report.show_family
    spec = "l" + ("l" if family else "") + " ".join("r" * len(cols) for _, cols in groups) + " rr"
    factor_cells, rules, start = [""] + ([""] if family else []), [], 2 + family
    for f, cols in groups:
        factor_cells.append(rf"\multicolumn{{{len(cols)}}}{{c}}{{{latex_escape(_factor_label(f))}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + len(cols) - 1}}}")
        start += len(cols)
    factor_cells += ["", ""]
    header = ["Initialisation", *([FAMILY_HEADER] if family else []),
              *(latex_escape(c.label) + ("" if c.higher_is_better else r" $\downarrow$") for c in report.columns),
              "Mean", "Rank"]
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(factor_cells) + r" \\", " ".join(rules),
             " & ".join(header) + r" \\", r"\midrule"]
    for row in report.rows:
        cells = []
        for col in report.columns:
            cell = row.cells.get(col.key)
            if cell is None:
                cells.append("--")
                continue
            text = fmt(cell.mean, col.decimals)
            if cell.n > 1 and cell.std is not None:
                text += rf"{{\scriptsize $\pm${fmt(cell.std, col.decimals)}}}"
            text = rf"\textbf{{{text}}}" if _is_best(report, row, col) else text
            cells.append(text + (r"$^\dagger$" if cell.deviations else ""))
        label = latex_escape(row.label)
        mean = fmt(row.mean, 2) if row.mean is not None else "--"
        rank = fmt(row.mean_rank, 2) if row.mean_rank is not None else "--"
        lines.append(" & ".join([rf"\textit{{{label}}}" if row.published else label, *([row.family] if family else []),
                                 *cells, mean, rank]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = _notes(report, r"$\downarrow$", r"$\pm$")
    return "\n".join(lines) + "\n" + "".join(f"% {n}\n" for n in notes)
