"""``severe report``: collect results.json files into the SEVERE table, with published references and plots.

- :func:`build_report` (``severe.report.table``) -> :class:`Report` with ``to_markdown()``, ``to_csv()``, ``to_latex()``
- :func:`plot_report` (``severe.report.plots``) writes the figure
- :func:`severe_mean` (``severe.report.columns``), :func:`load_reference` (``severe.report.reference``)
- the columns (labels, factors, directions): the experiment table ``severe.experiments``
"""

from severe.experiments import SEVERE_COLUMNS
from severe.report.columns import severe_mean
from severe.report.reference import load_reference
from severe.report.table import Report, build_report


def plot_report(report, path):
    """Write the report's figure (imports matplotlib only when called); see :func:`severe.report.plots.plot_report`."""
    from severe.report.plots import plot_report as _plot

    return _plot(report, path)


__all__ = ["Report", "SEVERE_COLUMNS", "build_report", "load_reference", "plot_report", "severe_mean"]
