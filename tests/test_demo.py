"""The embedded demo, end to end in its reduced mode (the full one is the README's first command)."""

import csv
import json
import logging

from severe.cli import main as severe_main


def test_quick_demo_end_to_end(tmp_path, capsys, caplog):
    out = tmp_path / "demo"
    with caplog.at_level(logging.INFO, logger="severe.demo"):
        assert severe_main(["demo", "--out", str(out), "--quick", "--no-progress"]) == 0
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
    stages = [r.getMessage() for r in caplog.records if r.name == "severe.demo"]
    assert stages[0].startswith("stage: pretraining on the synthetic source domain")
    assert [s.split(":")[1].strip() for s in stages[1:]] == [f"experiment {i} of 6" for i in range(1, 7)]
    # finished runs keep their record but not their training checkpoints (--keep-checkpoints keeps them)
    assert not list(out.rglob("*.pt")) and (out / "pretrained_synthetic_k400.pth").is_file()
    report = (out / "report.md").read_text()
    assert "| scratch |" in report and "| supervised |" in report
    rows = {r["row"]: r for r in csv.DictReader((out / "report.csv").read_text().splitlines())}
    assert {"scratch", "supervised"} <= set(rows)
    mae = json.loads((out / "runs" / "scratch" / "ucfrep" / "results.json").read_text())["primary"]["value"]
    assert abs(float(rows["scratch"]["ucfrep"]) - mae) <= 0.0005
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every run of the miniature suite wrote its record, for both initialisations
    for method in ("scratch", "supervised"):
        for exp in ("ucf101", "ssv2", "ucfrep"):
            res = json.loads((out / "runs" / method / exp / "results.json").read_text())
            assert res["init_method"] == method and res["experiment_id"] == exp
    pretrained = json.loads((out / "runs" / "supervised" / "ucf101" / "results.json").read_text())
    assert pretrained["init"]["note"].startswith("severe demo pretraining")
