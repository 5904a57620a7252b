"""severe report: collection, seed averaging, the SEVERE mean and ranks, formats, published references, plots, CLI."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from severe.cli import run_entry
from severe.errors import SevereError
from severe.report.cli import main as report_main
from severe.report.collect import collect
from severe.experiments import EXPERIMENTS, SEVERE_COLUMNS
from severe.report.columns import severe_mean
from severe.report.plots import plot_report
from severe.report.reference import load_reference, parse_reference
from severe.report.render import fmt
from severe.report.table import average_ranks, build_report
from severe.results import make_results, write_results


def write_run(root: Path, init: str, exp: str, value: float, seed: int = 1, *, mode: str | None = None,
              factor: str | None = None, higher_is_better: bool | None = None, sub: str = "") -> Path:
    spec = EXPERIMENTS.get(exp)
    if higher_is_better is None:
        higher_is_better = spec.higher_is_better if spec else True
    metric = spec.metric if spec and spec.metric else "m"  # the primary is the metric the table shows
    record = make_results(
        experiment_id=exp, task="t", dataset=exp, factor=factor or (spec.factor if spec else "domain"),
        mode=mode or (spec.mode if spec else "finetune"), init_method=init,
        metrics={metric: value / 100 if higher_is_better else value}, primary_metric=metric,
        primary_value=value, higher_is_better=higher_is_better,
        seed=seed, config={}, data={}, deviations=[])
    run_dir = root / exp / init / f"seed{seed}{sub}"
    write_results(run_dir, record)
    return run_dir / "results.json"


# hand-made benchmark: scratch and gdt have all 8 cells, my_method lacks Charades.
SCRATCH = dict(ssv2=40.0, gym99=80.0, ucf101_1000=50.0, gym99_1000=20.0, gym_fx_s1=30.0, gym_ub_s1=60.0, ucfrep=0.4,
               charades=5.0)
MINE = dict(ssv2=45.0, gym99=90.0, ucf101_1000=60.0, gym99_1000=30.0, gym_fx_s1=45.0, gym_ub_s1=70.0, ucfrep=0.1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "runs"
    for exp, v in SCRATCH.items():
        write_run(root, "scratch", exp, v)
    for exp, v in MINE.items():
        write_run(root, "my_method", exp, v)
    # gdt: two seeds on SSv2 (50, 52) and UCF-RC (0.2, 0.3); Gym99 ties scratch at 80
    for exp, v in dict(gym99=80.0, ucf101_1000=70.0, gym99_1000=40.0, gym_fx_s1=60.0, gym_ub_s1=80.0, charades=10.0).items():
        write_run(root, "gdt", exp, v)
    write_run(root, "gdt", "ssv2", 50.0, seed=1)
    write_run(root, "gdt", "ssv2", 52.0, seed=2)
    write_run(root, "gdt", "ucfrep", 0.2, seed=1)
    write_run(root, "gdt", "ucfrep", 0.3, seed=2)
    # outside the SEVERE view: a linear probe, the ucf101 config run in linear mode, an unknown experiment
    write_run(root, "gdt", "ucf101_linear", 61.0)
    write_run(root, "scratch", "ucf101", 33.0, mode="linear")
    write_run(root, "scratch", "my_exp", 12.0, factor="domain")
    (root / "not_a_run").mkdir()
    (root / "not_a_run" / "retest.json").write_text("{}")  # only results.json files count
    return root


# ------------------------------------------------------------------------------------------- reference data

DERIVED_MEANS = {  # docs/protocol.md §14.3 "Mean (derived)"
    "moco": 59.30, "video_moco": 58.43, "selavi": 58.36, "pretext_contrast": 60.09, "rspnet": 62.68, "avid_cma": 61.50,
    "ctp": 63.28, "tclr": 61.21, "tubelet_contrast": 66.41, "gdt": 64.49, "supervised": 70.81, "everest": 58.34,
    "mvd": 52.21, "mgmae": 58.80, "videomae": 57.65, "mgm": None, "mme": 66.14, "sigma": 63.79, "supervised_vit": 52.45,
    "locomotion": 59.10, "vindlu": 60.08, "umt": 64.21, "clip": 54.91, "viclip": 58.88,
}


def test_reference_data_reproduces_the_derived_severe_means():
    ref = load_reference()
    assert [m.id for m in ref.methods] == list(DERIVED_MEANS)
    assert "2504.05706" in ref.source
    for m in ref.methods:
        mean = severe_mean(m.results)
        if DERIVED_MEANS[m.id] is None:
            assert mean is None
        else:
            assert abs(mean - DERIVED_MEANS[m.id]) <= 0.005 + 1e-9, m.id
            assert fmt(mean, 2) == f"{DERIVED_MEANS[m.id]:.2f}", m.id  # half-up, as §14.3


def test_reference_cells_map_to_experiment_ids():
    ref = load_reference()
    gdt, sup, mgm = ref.method("gdt").results, ref.method("supervised").results, ref.method("mgm").results
    assert (gdt["gym99"], gdt["gym99_granularity"], gdt["ucfrep"], gdt["charades"]) == (90.5, 86.6, 0.123, 8.5)
    assert (sup["ucf101"], sup["ucf101_linear"], sup["gym99"], sup["gym99_granularity"]) == (91.4, 91.7, 92.1, 88.6)
    assert "k400" not in sup and "k400_linear" not in sup  # '–' in the paper
    assert "ucf101_1000" not in mgm and mgm["ssv2"] == 71.1
    assert ref.method("tubelet_contrast").results["gym_fx_s1"] == 80.1
    assert ref.method("supervised_vit").results["arrow_of_time"] == 98.2
    assert ref.method("viclip").results["ek100_linear"] == 27.3
    assert [len(ref.select(s)) for s in ("cnn", "vit", "all")] == [11, 13, 24]
    assert all(len(m.results) >= 25 for m in ref.methods if m.id != "mgm" and not m.id.startswith("supervised"))
    with pytest.raises(SevereError, match="not declared"):
        parse_reference('{"source": "s", "columns": {"a": "x"}, "methods": [{"id": "m", "name": "M", "family": "cnn", '
                        '"backbone": "b", "pretraining": "p", "results": {"b": 1}}]}')


# ------------------------------------------------------------------------------------------- table

def test_average_ranks_with_ties():
    assert average_ranks([3.0, 1.0, 3.0, 2.0], higher_is_better=True) == [1.5, 4.0, 1.5, 3.0]
    assert average_ranks([0.2, 0.1, 0.2, 0.4], higher_is_better=False) == [2.5, 1.0, 2.5, 4.0]
    assert average_ranks([5.0, 5.0, 5.0], higher_is_better=True) == [2.0, 2.0, 2.0]


def test_severe_table_cells_mean_and_ranks(runs):
    report = build_report([runs])
    assert [c.key for c in report.columns] == list(SEVERE_COLUMNS)
    assert [r.label for r in report.rows] == ["scratch", "gdt", "my_method"]
    scratch, gdt, mine = report.rows
    # seed averaging: mean, sample std, n, seeds
    ssv2 = gdt.cells["ssv2"]
    assert (ssv2.mean, ssv2.n, ssv2.seeds) == (51.0, 2, (1, 2)) and ssv2.std == pytest.approx(math.sqrt(2))
    assert gdt.cells["ucfrep"].mean == pytest.approx(0.25) and gdt.cells["ucfrep"].std == pytest.approx(math.sqrt(0.005))
    assert scratch.cells["gym_fx_s1"].mean == 30.0 and scratch.cells["gym_fx_s1"].n == 1
    # SEVERE mean, UCF-RC entering as 100*(1 - error)
    assert scratch.mean == pytest.approx((40 + 80 + 50 + 20 + 30 + 60 + 60 + 5) / 8)  # 43.125
    assert gdt.mean == pytest.approx((51 + 80 + 70 + 40 + 60 + 80 + 75 + 10) / 8)  # 58.25
    assert mine.mean is None and "charades" not in mine.cells
    # ranks: Gym99 tie between scratch and gdt -> 2.5 each; UCF-RC lower is better
    assert scratch.ranks == dict(ssv2=3, gym99=2.5, ucf101_1000=3, gym99_1000=3, gym_fx_s1=3, gym_ub_s1=3, ucfrep=3,
                                 charades=2)
    assert gdt.ranks == dict(ssv2=1, gym99=2.5, ucf101_1000=1, gym99_1000=1, gym_fx_s1=1, gym_ub_s1=1, ucfrep=2,
                             charades=1)
    assert mine.ranks == dict(ssv2=2, gym99=1, ucf101_1000=2, gym99_1000=2, gym_fx_s1=2, gym_ub_s1=2, ucfrep=1)
    assert scratch.mean_rank == pytest.approx(22.5 / 8)
    assert gdt.mean_rank == pytest.approx(10.5 / 8)
    assert mine.mean_rank == pytest.approx(12 / 7)


def test_all_columns_grouped_by_factor(runs):
    report = build_report([runs], columns="all")
    assert [c.key for c in report.columns] == [
        "ucf101 (linear)", "gym99", "ssv2", "my_exp", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1",
        "ucf101_linear", "ucfrep", "charades"]
    assert report.row("scratch").cells["ucf101 (linear)"].mean == 33.0  # never mixed into a finetuning column
    assert report.row("gdt").cells["ucf101_linear"].mean == 61.0
    assert report.row("gdt").mean == pytest.approx(58.25)  # the SEVERE mean does not depend on the view
    assert report.row("my_method").ranks == dict(ssv2=2, gym99=1, ucf101_1000=2, gym99_1000=2, gym_fx_s1=2,
                                                 gym_ub_s1=2, ucfrep=1)
    assert report.row("scratch").ranks["my_exp"] == 1.0
    md = report.to_markdown()
    assert "Domain: UCF101 (linear), Gym99, SSv2, my_exp · Samples" in md and "Linear probe: UCF101 LP ·" in md
    assert "| scratch | 33.0 | 80.0 | 40.0 | 12.0 | 50.0 |" in md and "| 2.45 (10/11) |" in md


def test_markdown_csv_latex_contain_the_numbers(runs):
    report = build_report([runs])
    md = report.to_markdown()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert lines["scratch"] == ("| scratch | 40.0 | 80.0 | 50.0 | 20.0 | 30.0 | 60.0 | 0.400 | 5.0 | 43.13 | 2.81 |")
    assert lines["gdt"] == ("| gdt | **51.0 ± 1.4** | 80.0 | **70.0** | **40.0** | **60.0** | **80.0** | 0.250 ± 0.071 "
                            "| **10.0** | 58.25 | 1.31 |")
    assert lines["my_method"] == ("| my_method | 45.0 | **90.0** | 60.0 | 30.0 | 45.0 | 70.0 | **0.100** | – | – "
                                  "| 1.71 (7/8) |")
    assert "over 2 seeds" in md and "UCF-RC err ↓" in md
    assert report.hidden == ["ucf101 (linear)", "my_exp", "ucf101_linear"]
    assert "not in this view (see --columns all): ucf101 (linear), my_exp, ucf101_linear." in md

    rows = {r["row"]: r for r in csv.DictReader(io.StringIO(report.to_csv()))}
    assert list(rows["gdt"])[:4] == ["row", "init", "published", "ssv2"]
    assert rows["gdt"]["ssv2"] == "51.0" and rows["gdt"]["ucfrep"] == "0.250" and rows["gdt"]["severe_mean"] == "58.25"
    assert rows["my_method"]["charades"] == "" and rows["my_method"]["severe_mean"] == ""
    assert (rows["my_method"]["mean_rank"], rows["my_method"]["ranked_columns"]) == ("1.71", "7")
    assert rows["scratch"]["published"] == "false" and rows["scratch"]["mean_rank"] == "2.81"

    tex = report.to_latex()
    assert r"\multicolumn{2}{c}{Granularity}" in tex and r"\cmidrule(lr){8-9}" in tex
    assert r"\textbf{51.0{\scriptsize $\pm$1.4}}" in tex and r"UCF-RC err $\downarrow$" in tex
    assert r"my\_method & 45.0 & \textbf{90.0} & 60.0 & 30.0 & 45.0 & 70.0 & \textbf{0.100} & -- & -- & 1.71 \\" in tex
    assert tex.count(r"\\") == 2 + 3  # factor header, column header, 3 rows


def test_published_rows_next_to_the_users_and_ranked_together(runs):
    report = build_report([runs], reference=True)
    labels = [r.label for r in report.rows]
    assert labels[:4] == ["scratch", "gdt", "gdt (published)", "my_method"]
    assert len(labels) == 3 + 11 and "supervised (published)" in labels and "videomae (published)" not in labels
    pub = report.row("gdt (published)")
    assert pub.published and pub.cells["ssv2"].mean == 58.0 and fmt(pub.mean, 2) == "64.49"
    # SSv2 over 14 rows: 60.8 60.2 59.8 59.6 59.0 59.0 58.0 57.1 56.9 56.2 52.0 | 51 45 40
    assert report.row("video_moco (published)").ranks["ssv2"] == 5.5
    assert report.row("rspnet (published)").ranks["ssv2"] == 5.5
    assert report.row("gdt").ranks["ssv2"] == 12 and report.row("scratch").ranks["ssv2"] == 14
    md = report.to_markdown()
    assert "| gdt (published) | 58.0 | 90.5 | 77.8 | 44.0 | 66.0 | 83.4 | 0.123 | 8.5 | 64.49 |" in md
    assert "2504.05706" in md
    vit = build_report([runs], reference="vit")
    assert "videomae (published)" in [r.label for r in vit.rows] and "gdt (published)" not in [r.label for r in vit.rows]
    assert len(build_report([runs], reference="all").rows) == 3 + 24
    with pytest.raises(SevereError, match="unknown reference set"):
        build_report([runs], reference="resnets")
    with pytest.raises(SevereError, match="unknown column view"):
        build_report([runs], columns="some")


def test_plot_is_a_png(runs, tmp_path):
    for name, report in (("a.png", build_report([runs], reference=True)), ("b.png", build_report([runs], columns="all"))):
        out = plot_report(report, tmp_path / name)
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(SevereError, match="not supported"):
        plot_report(report, tmp_path / "c.jpeg")


# ------------------------------------------------------------------------------------------- collection errors

def test_duplicate_seed_conflict_names_both_files(tmp_path):
    a = write_run(tmp_path, "moco", "ssv2", 50.0, seed=3)
    b = write_run(tmp_path, "moco", "ssv2", 51.0, seed=3, sub="_rerun")
    with pytest.raises(SevereError, match="conflicting results") as e:
        collect([tmp_path])
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_identical_copy_counts_once_and_overlapping_dirs(tmp_path):
    write_run(tmp_path, "moco", "ssv2", 50.0, seed=3)
    write_run(tmp_path, "moco", "ssv2", 50.0, seed=3, sub="_copy")
    write_run(tmp_path, "moco", "ssv2", 54.0, seed=4)
    cell = collect([tmp_path, tmp_path / "ssv2"]).cells[("moco", "ssv2", "finetune")]
    assert (cell.mean, cell.n, cell.seeds) == (52.0, 2, (3, 4))


def test_inconsistent_records_are_errors(tmp_path):
    write_run(tmp_path / "a", "moco", "gym99", 50.0, factor="granularity")
    with pytest.raises(SevereError, match="SEVERE groups it under 'domain'"):
        collect([tmp_path / "a"])
    write_run(tmp_path / "b", "moco", "ucfrep", 0.2, higher_is_better=True)
    with pytest.raises(SevereError, match="lower-is-better"):
        collect([tmp_path / "b"])
    write_run(tmp_path / "c", "moco", "ssv2", 0.57 * 100 + 100)
    with pytest.raises(SevereError, match=r"not a percentage in \[0, 100\]"):
        collect([tmp_path / "c"])
    write_run(tmp_path / "d", "moco", "new_exp", 1.0, factor="domain")
    write_run(tmp_path / "d", "gdt", "new_exp", 1.0, factor="task")
    with pytest.raises(SevereError, match="experiment 'new_exp' is inconsistent"):
        collect([tmp_path / "d"])
    bad = tmp_path / "e" / "results.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(SevereError, match="not a readable results file"):
        collect([tmp_path / "e"])
    path = write_run(tmp_path / "f", "moco", "ssv2", 50.0)
    path.write_text(path.read_text().replace('"seed": 1', '"seed": "one"'))
    with pytest.raises(SevereError, match="'seed' must be an integer"):
        collect([tmp_path / "f"])


# ------------------------------------------------------------------------------------------- CLI

def test_cli_prints_writes_and_plots(runs, tmp_path, capsys):
    assert report_main([str(runs)]) == 0
    out = capsys.readouterr().out
    assert "| scratch | 40.0 | 80.0 |" in out and "43.13" in out

    assert report_main([str(runs), "--format", "csv", "--out", str(tmp_path / "t.txt")]) == 0
    assert (tmp_path / "t.txt").read_text().startswith("row,init,published,ssv2,")
    assert report_main([str(runs), "--out", str(tmp_path / "t.tex"), "--columns", "all", "--reference-set", "vit",
                        "--plot", str(tmp_path / "p.png")]) == 0
    tex = (tmp_path / "t.tex").read_text()
    assert tex.startswith(r"\begin{tabular}") and r"videomae (published)" in tex and r"ucf101\_linear" not in tex
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {tmp_path / 't.tex'}" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SevereError, match="no results.json found under"):
        report_main([str(tmp_path / "empty")])
    with pytest.raises(SevereError, match="no such directory"):
        report_main([str(tmp_path / "missing")])
    entry = lambda argv, prog: report_main(argv, prog=prog)  # noqa: E731 - as severe.cli dispatches it
    assert run_entry(entry, [str(tmp_path / "empty")], "severe report") == 2
    err = capsys.readouterr().err
    assert err.startswith("severe report: error: no results.json found") and err.count("\n") == 1
    write_run(tmp_path / "r", "moco", "ssv2", 50.0)
    with pytest.raises(SevereError, match="--plot"):
        report_main([str(tmp_path / "r"), "--plot", str(tmp_path / "x.jpg")])
    assert not (tmp_path / "x.jpg").exists()
    with pytest.raises(SystemExit):
        report_main([str(tmp_path / "r"), "--format", "html"])


# ------------------------------------------------------------------------------------------- backbones

def _with_init(path: Path, **init) -> None:
    """Add an ``init`` record (as the task runners write it: the weights' meta) to a results file."""
    data = json.loads(path.read_text())
    data["init"] = init
    path.write_text(json.dumps(data))


def test_rows_show_the_backbone_and_pretraining_data_next_to_the_method(tmp_path):
    root = tmp_path / "runs"
    _with_init(write_run(root, "tubelet_contrast", "ssv2", 60.0), method="tubelet_contrast", arch="r2plus1d_18",
               pretraining_data="kinetics-400")
    _with_init(write_run(root, "tubelet_contrast", "ssv2", 50.0, sub="_mini"), method="tubelet_contrast",
               arch="r2plus1d_18", pretraining_data="mini-kinetics")
    _with_init(write_run(root, "tubelet_contrast_i3d", "ssv2", 55.0), method="tubelet_contrast_i3d", arch="i3d",
               pretraining_data="kinetics-400")
    _with_init(write_run(root, "tubelet_contrast_r3d", "ssv2", 52.0), method="tubelet_contrast_r3d", arch="r3d_18")
    _with_init(write_run(root, "scratch", "ssv2", 40.0), method="scratch", arch="r2plus1d_18")
    _with_init(write_run(root, "scratch", "ssv2", 35.0, sub="_i3d"), method="scratch", arch="i3d")  # same seed: own row
    _with_init(write_run(root, "tclr", "ssv2", 45.0), method="tclr", arch="r2plus1d_18_tclr")
    report = build_report([root], reference=True)
    labels = [r.label for r in report.rows]
    assert labels[:9] == ["scratch", "scratch (i3d)", "tubelet_contrast", "tubelet_contrast (published)",
                          "tubelet_contrast (mini-kinetics)", "tubelet_contrast_r3d (r3d_18)",
                          "tubelet_contrast_i3d (i3d)", "tclr", "tclr (published)"]
    assert report.row("scratch (i3d)").cells["ssv2"].mean == 35.0 and report.row("scratch").cells["ssv2"].mean == 40.0
    assert report.row("tubelet_contrast (mini-kinetics)").cells["ssv2"].mean == 50.0
    assert report.row("tubelet_contrast_i3d (i3d)").init == "tubelet_contrast_i3d"
    assert report.row("tubelet_contrast_i3d (i3d)").ranks["ssv2"] < report.row("tubelet_contrast_r3d (r3d_18)").ranks["ssv2"]
    assert "| tubelet_contrast_i3d (i3d) | 55.0 |" in report.to_markdown()
    rows = {r["row"]: r for r in csv.DictReader(io.StringIO(report.to_csv()))}
    assert (rows["tubelet_contrast_i3d (i3d)"]["init"], rows["tubelet_contrast_i3d (i3d)"]["backbone"]) == \
        ("tubelet_contrast_i3d", "i3d")
    assert rows["tclr"]["backbone"] == "r2plus1d_18_tclr" and rows["tclr (published)"]["backbone"]
    assert r"tubelet\_contrast\_r3d (r3d\_18) & 52.0" in report.to_latex()
    # records without an init entry keep their plain row, a malformed one is named
    bad = write_run(tmp_path / "bad", "moco", "ssv2", 50.0)
    _with_init(bad, method="moco", arch=7)
    with pytest.raises(SevereError, match="'init.arch' must be a non-empty string, got 7"):
        collect([tmp_path / "bad"])
