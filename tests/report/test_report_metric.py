"""``severe report`` shows the metric the experiment table names for each column, read from each record's
``metrics`` whatever its ``primary`` says (records written before the FineGym granularity columns switched to
mean per-class accuracy keep ``primary`` = top-1); ``--metric top1|mean_class`` overrides it; the footnote
names each column's metric (docs/protocol.md §4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from severe.errors import SevereError
from severe.experiments import EXPERIMENTS
from severe.report.cli import main as report_main
from severe.report.table import build_report
from severe.results import make_results, write_results

GRANULARITY = ("gym99_granularity", "gym_vault", "gym_floor", "gym_fx_s1", "gym_ub_s1", "gym288")


def test_experiment_table_names_the_published_metric_of_every_column():
    for e in EXPERIMENTS.values():
        if e.runner == "recognition":
            assert e.metric == ("mean_class_accuracy" if e.id in GRANULARITY else "video_top1"), e.id
    assert (EXPERIMENTS["ucfrep"].metric, EXPERIMENTS["charades"].metric, EXPERIMENTS["ava"].metric) == \
        ("mae", "mAP", "mAP")


def _recognition_run(root: Path, init: str, exp: str, top1: float, mean_class: float, seed: int = 1) -> None:
    """A record as the recognition runner writes it: primary = video_top1 in %, metrics as fractions."""
    spec = EXPERIMENTS[exp]
    record = make_results(
        experiment_id=exp, task="classification", dataset=exp, factor=spec.factor, mode=spec.mode, init_method=init,
        metrics={"video_top1": top1, "video_top5": 1.0, "mean_class_accuracy": mean_class},
        primary_metric="video_top1", primary_value=round(100 * top1, 4), higher_is_better=True, seed=seed,
        config={}, data={}, deviations=[])
    write_results(root / exp / init / f"seed{seed}", record)


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    _recognition_run(root, "gdt", "gym_fx_s1", top1=0.75, mean_class=0.5)
    _recognition_run(root, "gdt", "gym_ub_s1", top1=0.875, mean_class=0.625)
    _recognition_run(root, "gdt", "ssv2", top1=0.25, mean_class=0.125)
    _recognition_run(root, "gdt", "gym288", top1=0.8, mean_class=0.55, seed=1)
    _recognition_run(root, "gdt", "gym288", top1=0.9, mean_class=0.45, seed=2)
    return root


def test_columns_show_their_metric_whatever_the_primary(runs):
    report = build_report([runs])
    gdt = report.row("gdt")
    assert gdt.cells["gym_fx_s1"].mean == 50.0 and gdt.cells["gym_ub_s1"].mean == 62.5  # mean per-class
    assert gdt.cells["ssv2"].mean == 25.0  # top-1
    assert {c.key: c.metric for c in report.columns}["gym_fx_s1"] == "mean_class_accuracy"
    full = build_report([runs], columns="all").row("gdt")
    assert full.cells["gym288"].mean == pytest.approx(50.0) and full.cells["gym288"].n == 2  # (55 + 45) / 2


@pytest.mark.parametrize("metric,fx,ub,ssv2", [("top1", 75.0, 87.5, 25.0), ("mean_class", 50.0, 62.5, 12.5)])
def test_metric_override(runs, metric, fx, ub, ssv2):
    gdt = build_report([runs], metric=metric).row("gdt")
    assert (gdt.cells["gym_fx_s1"].mean, gdt.cells["gym_ub_s1"].mean, gdt.cells["ssv2"].mean) == (fx, ub, ssv2)


def test_footnote_names_each_columns_metric(runs, capsys):
    assert report_main([str(runs)]) == 0
    out = capsys.readouterr().out
    note = next(line for line in out.splitlines() if line.startswith("- Metric of each column:"))
    assert "mean per-class accuracy (%): FX-S1, UB-S1" in note
    assert "top-1 video accuracy (%): SSv2, Gym99, UCF101 1k, Gym99 1k" in note
    assert "mAP (%): Charades" in note and "UCF-RC err" in note
    assert report_main([str(runs), "--metric", "top1"]) == 0
    note = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("- Metric of each column:"))
    assert "mean per-class" not in note and "top-1 video accuracy (%): SSv2, Gym99, UCF101 1k, Gym99 1k, FX-S1, UB-S1" \
        in note


def test_a_record_without_the_column_metric_is_an_error(tmp_path):
    record = make_results(
        experiment_id="gym_vault", task="classification", dataset="gym_vault", factor="granularity", mode="finetune",
        init_method="gdt", metrics={"video_top1": 0.5}, primary_metric="video_top1", primary_value=50.0,
        higher_is_better=True, seed=1, config={}, data={}, deviations=[])
    write_results(tmp_path / "r", record)
    with pytest.raises(SevereError, match="mean_class_accuracy"):
        build_report([tmp_path], columns="all")
    assert build_report([tmp_path], columns="all", metric="top1").row("gdt").cells["gym_vault"].mean == 50.0
    with pytest.raises(SevereError, match="unknown metric"):
        build_report([tmp_path], metric="top5")
