"""The embedded demo, end to end in its reduced mode (the full one is the README's first command)."""

import csv
import json

from severe.cli import main as severe_main


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert severe_main(["demo", "--out", str(out), "--quick", "--no-progress"]) == 0
    assert f"report: {out / 'report.md'}" in capsys.readouterr().out
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
