"""The report's family column (CNN / ViT) and the published ViT rows (docs/protocol.md §15)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from severe.report.cli import main as report_main
from severe.report.table import build_report
from tests.report.test_report import write_run


def _with_arch(path: Path, arch: str) -> None:
    data = json.loads(path.read_text())
    data["init"] = {"method": data["init_method"], "arch": arch}
    path.write_text(json.dumps(data))


def _runs(root: Path) -> Path:
    _with_arch(write_run(root, "gdt", "ssv2", 55.0), "r2plus1d_18")
    _with_arch(write_run(root, "videomae", "ssv2", 66.0), "vit_b_videomae")
    write_run(root, "svt", "gym99", 80.0)  # no recorded architecture: the method table's (TimeSformer)
    return root


def test_family_column_and_default_reference_rows(tmp_path):
    root = _runs(tmp_path / "runs")
    report = build_report([root], reference=True)  # CNN and ViT rows found: both published sets
    fam = {r.label: r.family for r in report.rows}
    assert (fam["gdt"], fam["videomae"], fam["svt"]) == ("CNN", "ViT", "ViT")
    assert (fam["videomae (published)"], fam["umt (published)"], fam["gdt (published)"]) == ("ViT", "ViT", "CNN")
    assert report.reference_set == "all" and report.show_family
    md = report.to_markdown()
    assert "| Initialisation | Family | SSv2 |" in md
    assert "| videomae | ViT | 66.0 |" in md and "| gdt | CNN | 55.0 |" in md
    published = report.row("videomae (published)")
    assert published.published and published.cells["ssv2"].mean == 68.6  # SEVERE++ VideoMAE FT SSv2
    rows = {r["row"]: r for r in csv.DictReader(io.StringIO(report.to_csv()))}
    assert (rows["videomae"]["family"], rows["gdt"]["family"], rows["viclip (published)"]["family"]) == ("ViT", "CNN", "ViT")
    tex = report.to_latex()
    assert r"Initialisation & Family &" in tex and r"videomae & ViT & " in tex


def test_vit_only_results_get_the_vit_reference_rows(tmp_path, capsys):
    root = tmp_path / "runs"
    _with_arch(write_run(root, "videomae", "ssv2", 66.0), "vit_b_videomae")
    _with_arch(write_run(root, "videomae", "ssv2", 20.0, sub="_tiny"), "vit_tiny_videomae")  # a twin: own row
    report = build_report([root], reference=True)
    assert report.reference_set == "vit"
    labels = [r.label for r in report.rows]
    assert labels[:3] == ["videomae", "videomae (published)", "videomae (vit_tiny_videomae)"]
    assert "gdt (published)" not in labels
    assert {"sigma (published)", "supervised_vit (published)", "viclip (published)"} <= set(labels)
    assert report_main([str(root), "--reference"]) == 0
    assert "| videomae (published) | ViT | 68.6 |" in capsys.readouterr().out


def test_cnn_only_tables_have_no_family_column(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "gdt", "ssv2", 55.0)
    report = build_report([root], reference=True)
    assert report.reference_set == "cnn" and not report.show_family
    assert "| Initialisation | SSv2 |" in report.to_markdown()
