"""The one experiment table: benchmark and report read the same rows, every config row names a packaged config
that says the same id, factor and mode, and the shipped configs are found by name."""

from __future__ import annotations

import pytest

from severe.benchmark.launch import plan_jobs
from severe.benchmark.runners import RUNNERS
from severe.config import find_config, load_config
from severe.configs import FAMILIES, ROOT, config_dir, shipped_configs
from severe.errors import SevereError
from severe.experiments import (EXPERIMENT_LIST, EXPERIMENTS, FACTOR_LABELS, FACTORS, SEVERE_COLUMNS, SUITES,
                                suite)
from severe.recognition.config import MODES, recognition_defaults
from severe.repetition.config import repetition_defaults
from severe.report.table import make_report
from severe.tasks import TASKS
from severe.tasks.lifecycle import load_task_config
from tests.helpers import REPO

SUBPROJECT_LINKS = {"ssl_benchmark": "ssl_benchmark/configs", "slowfast": "SlowFast-ssl-vssl/configs",
                    "repetition": "Deep-Temporal-Repetition-Counting/configs"}


def test_rows_are_well_formed():
    assert len(EXPERIMENTS) == len(EXPERIMENT_LIST)  # unique ids
    assert set(FACTOR_LABELS) == set(FACTORS)
    for e in EXPERIMENT_LIST:
        assert e.factor in FACTORS and e.mode in MODES, e
        assert e.runner is None or e.runner in RUNNERS, e
        assert (e.runner is None) <= (e.config is None), e  # a config needs a runner
        assert e.decimals == (1 if e.higher_is_better else 3) or e.id == "stal_in_domain", e
    published_only = [e.id for e in EXPERIMENT_LIST if e.runner is None]
    assert published_only == ["stal_in_domain", "tal_in_domain", "activitynet_tal"]


def test_every_suite_experiment_is_runnable_and_severe_is_the_eight_columns():
    assert SUITES["severe"] == SEVERE_COLUMNS and len(SEVERE_COLUMNS) == 8
    for name in SUITES:
        for e in suite(name):
            assert e.runner in RUNNERS and e.config_path is not None and e.config_path.is_file(), (name, e)
    assert set(SUITES["full"]) == {i for n in ("domains", "samples", "granularity", "tasks") for i in SUITES[n]}
    with pytest.raises(SevereError, match="unknown suite 'nope'"):
        suite("nope")


def test_benchmark_and_report_read_the_same_table(tmp_path):
    """Each SEVERE column: the report shows the table's label, factor and direction; the benchmark runs the
    table's config through the table's runner."""
    report = make_report(None, columns="severe", reference="cnn")
    assert [c.key for c in report.columns] == list(SEVERE_COLUMNS)
    for col in report.columns:
        row = EXPERIMENTS[col.key]
        assert (col.label, col.factor, col.higher_is_better, col.decimals, col.mode) == \
            (row.label, row.factor, row.higher_is_better, row.decimals, row.mode)
    jobs = plan_jobs(suite("severe"), "gdt", "w.pth", tmp_path / "data", tmp_path / "out", False, {})
    for job in jobs:
        row = EXPERIMENTS[job.name]
        assert str(row.config_path) in job.argv
        assert job.entry == (RUNNERS[row.runner].module, RUNNERS[row.runner].function)
    # the published reference columns are rows of the table too (labels, not bare ids)
    reference_ids = {k for r in report.rows for k in r.cells}
    assert reference_ids <= set(EXPERIMENTS)


def _check_config(row) -> None:
    path = row.config_path
    if row.runner == "recognition":
        cfg = load_config(recognition_defaults(), path)
        assert (cfg.EXPERIMENT.ID, cfg.EXPERIMENT.FACTOR, cfg.TRAIN.MODE) == (row.id, row.factor, row.mode), path
    elif row.runner == "repetition":
        assert load_config(repetition_defaults(), path).EXPERIMENT.ID == row.id
    else:  # the PySlowFast tasks name their experiment after the task
        assert row.id == row.runner and load_task_config(TASKS[row.runner], path).TRAIN.DATASET == row.runner


@pytest.mark.parametrize("row", [e for e in EXPERIMENT_LIST if e.config is not None], ids=lambda e: e.id)
def test_config_rows_name_a_packaged_config_of_the_same_experiment(row):
    path = row.config_path
    assert path.is_file() and path.resolve().is_relative_to(ROOT), path
    _check_config(row)


def test_every_shipped_recognition_config_is_a_table_row():
    rows = {e.config_path for e in EXPERIMENT_LIST if e.runner == "recognition" and e.config}
    assert set(shipped_configs("ssl_benchmark")) == rows


FINDERS = {"ssl_benchmark": TASKS["recognition"].find_config, "repetition": TASKS["repetition"].find_config,
           "slowfast": TASKS["ava"].find_config}


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_configs_are_found_by_name(family, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # names resolve against the package, not the working directory
    files = shipped_configs(family)
    assert files
    for path in files:
        name = path.relative_to(config_dir(family)).with_suffix("")
        assert FINDERS[family](str(name)) == path


def test_subproject_config_folders_are_links_to_the_packaged_ones():
    repo = REPO
    for family, link in SUBPROJECT_LINKS.items():
        folder = repo / link
        assert folder.is_symlink() and folder.resolve() == config_dir(family).resolve()
    # _BASE_ chains resolve from the subproject path as well
    cfg = load_config(recognition_defaults(), repo / "ssl_benchmark" / "configs" / "samples" / "gym99_1000.yaml")
    assert (cfg.DATA.DATASET, cfg.EXPERIMENT.ID) == ("gym99", "gym99_1000")
