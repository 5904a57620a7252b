"""The embedded demo, end to end in its quick mode: the same 18 experiments as the README's demo, with less
pretraining and shorter runs (the README's command is the full one)."""

import csv
import json
import logging

import pytest

from severe.cli import main as severe_main
from severe.demo import DEMO_COLUMNS, SCALES, demo_experiments
from severe.experiments import SEVERE_COLUMNS


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("severe.demo")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert severe_main(["demo", "--out", str(out), "--quick"]) == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return out, records


def _primary(out, method, experiment):
    return json.loads((out / "runs" / method / experiment / "results.json").read_text())


@pytest.mark.slow
def test_quick_demo_runs_every_severe_column_and_ava_for_both_rows(quick_demo):
    out, lines = quick_demo
    # stage names, then one "experiment i of 18" line per finished experiment, in order
    assert lines[0].startswith("stage 1 of 4: writing the synthetic data root")
    assert lines[1].startswith("stage 2 of 4: pretraining on the synthetic source domain")
    assert lines[2].startswith("source-domain validation accuracy after pretraining")
    assert lines[3].startswith("stage 3 of 4: 18 experiments")
    progress = [line for line in lines if line.startswith("experiment ")]
    assert [p.split(":")[0] for p in progress] == [f"experiment {i} of 18" for i in range(1, 19)]
    assert lines[-1] == "stage 4 of 4: writing the report"
    # every run wrote its record, with the same overrides for both rows
    for experiment, overrides in demo_experiments(SCALES["quick"]):
        scratch, pretrained = _primary(out, "scratch", experiment.id), _primary(out, "supervised", experiment.id)
        assert scratch["init_method"] == "scratch" and pretrained["init_method"] == "supervised"
        assert scratch["init"]["arch"] == pretrained["init"]["arch"] == "r2plus1d_18_w8"
        assert pretrained["init"]["note"].startswith("severe demo pretraining")
    assert [e.id for e, _ in demo_experiments(SCALES["quick"])] == list(DEMO_COLUMNS) == [*SEVERE_COLUMNS, "ava"]
    # finished runs keep their record but not their training checkpoints (--keep-checkpoints keeps them)
    assert not list(out.rglob("*.pt")) and (out / "pretrained_synthetic_k400.pth").is_file()
    assert (out / "logs" / "supervised_ava.log").is_file() and (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_demo_report_has_each_rows_severe_mean_from_the_run_records(quick_demo):
    out, _ = quick_demo
    rows = {r["row"]: r for r in csv.DictReader((out / "report.csv").read_text().splitlines())}
    assert set(rows) == {"scratch", "supervised"}
    for method, row in rows.items():
        values = []
        for column in SEVERE_COLUMNS:
            record = _primary(out, method, column)
            if column == "ucfrep":  # an error: enters the SEVERE mean as 100 * (1 - error)
                value = record["metrics"]["mae"]
                assert abs(float(row[column]) - value) <= 0.0005
                values.append(100.0 * (1.0 - value))
            else:
                metric = "mean_class_accuracy" if column.startswith("gym_") else {
                    "charades": "mAP"}.get(column, "video_top1")
                value = record["metrics"][metric] * 100.0  # stored as fractions, shown in %
                assert abs(float(row[column]) - value) <= 0.05, column
                values.append(value)
        assert abs(float(row["severe_mean"]) - sum(values) / 8) <= 0.005
        assert row["ranked_columns"] == "9" and 1.0 <= float(row["mean_rank"]) <= 2.0
    assert rows["scratch"]["ava"] and rows["supervised"]["ava"]
    report = (out / "report.md").read_text()
    assert "| scratch |" in report and "| supervised |" in report and "SEVERE mean" in report


def test_source_domain_classes_are_drift_directions_at_random_speeds():
    import numpy as np

    from severe.synth import demo_domains, videos

    rng = np.random.default_rng(0)
    assert demo_domains.SOURCE_CLASSES == len(videos._DIRECTIONS) == 5
    for label, (direction, angle) in enumerate(videos._DIRECTIONS):
        specs = [demo_domains.source_spec(label, rng) for _ in range(20)]
        assert {(s.direction, s.angle_deg, s.pattern) for s in specs} == {(direction, angle, "straight")}
        speeds = [s.speed for s in specs]
        lo, hi = demo_domains.SOURCE_SPEEDS
        assert all(lo <= v <= hi for v in speeds) and len(set(speeds)) == 20  # a speed of its own per clip
    a = demo_domains.render_source_clip(0, num_frames=4, height=32, width=42, seed=1)
    assert a.shape == (4, 32, 42, 3) and a.dtype == np.uint8
    assert np.array_equal(a, demo_domains.render_source_clip(0, num_frames=4, height=32, width=42, seed=1))
    assert not np.array_equal(a, demo_domains.render_source_clip(0, num_frames=4, height=32, width=42, seed=2))


@pytest.mark.slow
def test_an_interrupted_demo_continues_to_the_same_report(quick_demo, tmp_path):
    """Killed during pretraining (before its first checkpoint) and during two experiments: the same command
    pretrains again, runs those experiments alone and writes the same table."""
    import shutil

    out, _ = quick_demo
    again = tmp_path / "demo"
    shutil.copytree(out, again)
    (again / "pretrained_synthetic_k400.pth").unlink()
    for name in ("results.json", "metrics.jsonl"):
        (again / "pretraining" / name).unlink()
    (again / "runs" / "scratch" / "gym_ub_s1" / "results.json").unlink()  # killed after its last checkpoint
    shutil.rmtree(again / "runs" / "supervised" / "gym_ub_s1")  # killed before it wrote anything (the copy's
    # partial run would name the original folder's weights file, which a resume refuses)
    assert severe_main(["demo", "--out", str(again), "--quick"]) == 0
    assert (again / "report.csv").read_text() == (out / "report.csv").read_text()
    metrics = [json.loads((o / "pretraining" / "results.json").read_text())["metrics"] for o in (again, out)]
    assert metrics[0] == metrics[1]
