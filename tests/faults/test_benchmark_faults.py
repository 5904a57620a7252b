"""Faults in ``severe benchmark`` and ``severe report`` through the command line: a failing experiment inside a
benchmark, Ctrl-C, a changed-config or corrupted rerun, the --only grammar, relative --weights, unreadable and
foreign results in a report, and the protocol-deviation marks. Each asserts the exit status, the one-line
message (never a traceback) and that nothing finished earlier is lost.

One miniature benchmark (ucf101 runs, ssv2 fails: its data is missing) is interrupted with SIGINT, resumed and
shared by the tests (which copy it before changing it)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from severe.benchmark.reuse import protocol_config
from severe.cli import main as severe_main
from tests.helpers import subprocess_env

TINY = ["recognition:TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "4", "DATA.NUM_FRAMES", "4", "DATA.CROP", "32",
        "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1", "DATA.TEST_CLIPS", "1"]


def bench(data: Path, out: Path, *extra: str, overrides: list[str] = TINY) -> list[str]:
    return ["benchmark", "--init", "scratch", "--data-root", str(data), "--out", str(out), "--suite", "domains",
            "--only", "ucf101,ssv2", "--no-progress", *extra, *overrides]


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def finished(synthetic_root, tmp_path_factory):
    """Run the miniature benchmark in a subprocess, Ctrl-C it during ucf101, then rerun the same command here."""
    base = tmp_path_factory.mktemp("faults")
    data = base / "data"  # every dataset but Something-Something v2: ssv2 fails, ucf101 runs
    data.mkdir()
    for d in synthetic_root.iterdir():
        if d.name != "smth-smth-v2":
            (data / d.name).symlink_to(d)
    out = base / "out"
    argv = bench(data, out)
    proc = subprocess.Popen(["severe", *argv], env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    started = out / "scratch" / "ucf101" / "config.yaml"
    deadline = time.monotonic() + 240
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    interrupted = (proc.wait(timeout=120), *proc.communicate())
    next_started = (out / "scratch" / "ssv2").exists()
    assert severe_main([*argv, "--dry-run"]) == 0  # what the rerun will do
    return {"data": data, "out": out, "argv": argv, "interrupted": interrupted, "next_started": next_started}


@pytest.fixture(scope="module")
def resumed(finished):
    """The same command again after the interrupt (stdout, stderr captured by the tests through capsys)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = severe_main(finished["argv"])
    return code, out.getvalue(), err.getvalue()


def test_ctrl_c_stops_the_whole_benchmark_and_the_same_command_resumes(finished, resumed):
    code, out, err = finished["interrupted"]
    assert code == 130, (out, err)
    assert "interrupted; run the same command again to resume" in err
    no_traceback(out, err)
    assert not finished["next_started"]  # the next experiment did not start
    assert "ucf101               interrupted" in out and "ssv2                 not run" in out
    code, out, err = resumed
    assert (finished["out"] / "scratch" / "ucf101" / "results.json").is_file()


def test_a_failing_experiment_is_recorded_and_the_others_run(finished, resumed):
    code, out, err = resumed
    assert code == 1, (out, err)
    no_traceback(out, err)
    assert "summary: 1 done, 1 failed, 0 skipped" in out
    (line,) = [s for s in out.splitlines() if s.strip().startswith("ssv2")]
    assert "failed: dataset folder" in line and "smth-smth-v2" in line
    record = json.loads((finished["out"] / "scratch" / "ucf101" / "results.json").read_text())
    assert record["experiment_id"] == "ucf101" and record["config"]["TRAIN"]["EPOCHS"] == 1


def test_an_invalid_override_fails_its_experiment_alone(finished, tmp_path, capsys):
    """An override the entry point refuses (a negative learning rate) fails that experiment with one line."""
    lr = [*TINY, "TRAIN.LR", "-0.1"]
    args = bench(finished["data"], tmp_path / "out", overrides=lr)
    args[args.index("ucf101,ssv2")] = "ucf101"
    assert severe_main(args) == 1
    out, err = capsys.readouterr()
    no_traceback(out, err)
    (line,) = [s for s in out.splitlines() if s.strip().startswith("ucf101")]
    assert "failed:" in line and "-0.1" in line
    assert "summary: 0 done, 1 failed, 0 skipped" in out


def test_rerun_skips_only_runs_with_the_same_config(finished, resumed, tmp_path, capsys):
    out_dir = tmp_path / "out"
    shutil.copytree(finished["out"], out_dir, symlinks=True)
    results = out_dir / "scratch" / "ucf101" / "results.json"
    before = results.read_text()
    # the same command: ucf101 reused, ssv2 tried again (and fails again)
    assert severe_main(bench(finished["data"], out_dir)) == 1
    out, err = capsys.readouterr()
    assert "ucf101               skipped (results.json exists)" in out
    # another epoch count: one line names the difference and the way out; nothing runs, nothing is lost
    other = bench(finished["data"], out_dir, overrides=[*TINY[:1], "2", *TINY[2:]])
    assert severe_main(other) == 2
    out, err = capsys.readouterr()
    no_traceback(out, err)
    line = err.strip().splitlines()[-1]
    assert line.startswith("severe benchmark: error:") and "--rerun-mismatched" in line and "--out" in line
    assert "ucf101" in err and "TRAIN.EPOCHS 1 there, 2 requested" in err
    assert results.read_text() == before
    # --dry-run shows the mismatch and stops the same way
    assert severe_main([*other, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert "[mismatch] ucf101" in out and results.read_text() == before


def test_a_corrupted_results_json_is_never_done(finished, resumed, tmp_path, capsys):
    out_dir = tmp_path / "out"
    shutil.copytree(finished["out"], out_dir, symlinks=True)
    results = out_dir / "scratch" / "ucf101" / "results.json"
    results.write_text('{"schema": 1, "primary": ')  # cut mid-write by hand
    args = bench(finished["data"], out_dir)
    assert severe_main(args) == 2
    out, err = capsys.readouterr()
    no_traceback(out, err)
    assert len(err.strip().splitlines()) == 1 and "not a readable results file" in err and "--rerun-mismatched" in err
    # --dry-run shows what would be replaced and replaces nothing
    assert severe_main([*args, "--rerun-mismatched", "--dry-run"]) == 0
    assert "[replace] ucf101" in capsys.readouterr().out and results.read_text().startswith('{"schema": 1, "primary": ')
    # the explicit flag reruns into it: a valid record again (ssv2 still fails for its missing data)
    assert severe_main([*args, "--rerun-mismatched"]) == 1
    out, err = capsys.readouterr()
    no_traceback(out, err)
    assert "summary: 1 done, 1 failed, 0 skipped" in out
    assert json.loads(results.read_text())["experiment_id"] == "ucf101"


def test_only_grammar_keeps_the_overrides(finished, tmp_path, capsys):
    base = ["benchmark", "--init", "scratch", "--data-root", str(finished["data"]), "--out", str(tmp_path / "o"),
            "--suite", "domains", "--dry-run"]
    for only in (["--only", "ucf101", "ssv2"], ["--only", "ucf101,ssv2"], ["--only", "ucf101", "--only", "ssv2"],
                 ["--only=ucf101,ssv2"]):
        for tail in (["TRAIN.EPOCHS", "2"], ["--", "TRAIN.EPOCHS", "2"]):
            assert severe_main([*base, *only, *tail]) == 0, (only, tail)
            plan = [s for s in capsys.readouterr().out.splitlines() if s.startswith("  [new]")]
            assert [s.split()[1] for s in plan] == ["ucf101:", "ssv2:"], (only, tail)
            assert all(s.endswith("TRAIN.EPOCHS 2") for s in plan), (only, tail)
    assert severe_main([*base, "--only", "ucf101,nope", "TRAIN.EPOCHS", "2"]) == 2
    assert "nope are not in suite 'domains'" in capsys.readouterr().err


def test_dry_run_makes_a_relative_weights_path_absolute(finished, tmp_path, monkeypatch, capsys):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "gdt.pth").write_bytes(b"not loaded by a dry run")
    monkeypatch.chdir(tmp_path)
    assert severe_main(["benchmark", "--init", "gdt", "--weights", "w/gdt.pth", "--data-root", str(finished["data"]),
                        "--out", "out", "--suite", "domains", "--only", "ucf101", "--dry-run"]) == 0
    (line,) = [s for s in capsys.readouterr().out.splitlines() if s.startswith("  [new]")]
    assert f"--weights {tmp_path / 'w' / 'gdt.pth'}" in line and f"--out {tmp_path / 'out' / 'gdt' / 'ucf101'}" in line


def _write(path: Path, record: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    return path


def test_report_skips_unreadable_and_foreign_results(finished, resumed, tmp_path, capsys):
    good = json.loads((finished["out"] / "scratch" / "ucf101" / "results.json").read_text())
    _write(tmp_path / "runs" / "a" / "results.json", good)
    bad = _write(tmp_path / "runs" / "b" / "results.json", '{"schema": 1, ')
    foreign = _write(tmp_path / "runs" / "c" / "results.json", {"accuracy": 0.5})
    assert severe_main(["report", str(tmp_path / "runs"), "--columns", "all"]) == 0
    out, err = capsys.readouterr()
    no_traceback(out, err)
    assert "| scratch |" in out  # the readable run is in the table
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"severe report: skipped {bad}: not a readable results file")
    assert lines[1].startswith(f"severe report: skipped {foreign}: not a severe results file")
    # nothing readable at all: one line, exit 2
    assert severe_main(["report", str(tmp_path / "runs" / "b")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("severe report: error: no readable results.json")


def test_report_marks_runs_that_deviate_from_the_protocol(finished, resumed, tmp_path, capsys):
    good = json.loads((finished["out"] / "scratch" / "ucf101" / "results.json").read_text())
    _write(tmp_path / "tiny" / "results.json", good)  # the miniature run: overrides, 1 epoch
    assert severe_main(["report", str(tmp_path / "tiny"), "--columns", "all", "--reference"]) == 0
    out = capsys.readouterr().out
    (row,) = [s for s in out.splitlines() if s.startswith("| scratch |")]
    assert row.split("|")[2].strip().endswith("†")
    published = [s for s in out.splitlines() if "(published) |" in s]
    assert published and not any("†" in s for s in published)
    (note,) = [s for s in out.splitlines() if s.startswith("- † scratch, UCF101: deviates from the SEVERE protocol")]
    protocol_epochs = protocol_config("ucf101", "scratch")["TRAIN"]["EPOCHS"]
    assert f"TRAIN.EPOCHS 1 (protocol: {protocol_epochs})" in note and "TRAIN.BATCH_SIZE 4 (protocol: 32)" in note
    # the protocol config, but entries left out by DATA.ALLOW_MISSING and undecodable test videos
    clean = {**good, "config": protocol_config("ucf101", "scratch")}
    _write(tmp_path / "clean" / "results.json", clean)
    assert severe_main(["report", str(tmp_path / "clean"), "--columns", "all"]) == 0
    out = capsys.readouterr().out
    assert "†" not in out
    lossy = {**clean, "data": {**good["data"], "train": {**good["data"]["train"], "missing": 2}, "test_failures": 1}}
    _write(tmp_path / "lossy" / "results.json", lossy)
    assert severe_main(["report", str(tmp_path / "lossy"), "--columns", "all", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert r"$^\dagger$" in out
    assert "2 train entries left out for missing media (DATA.ALLOW_MISSING)" in out
    assert "1 undecodable test videos left out (DATA.ALLOW_TEST_FAILURES)" in out


def test_weights_are_compared_by_content(finished, resumed, tmp_path):
    """A converted file matches runs made from it or from the checkpoint it was converted from; other weights
    do not; another init never does."""
    import torch

    from severe.benchmark.reuse import mismatch, weights_ids
    from severe.io import sha256_file

    raw = tmp_path / "raw.pth"
    raw.write_bytes(b"the published checkpoint")  # not read: only hashed
    converted = tmp_path / "gdt.pth"
    torch.save({"meta": {"method": "gdt", "arch": "r2plus1d_18", "source_sha256": sha256_file(raw)}, "state_dict": {}},
               converted)
    other = tmp_path / "other.pth"
    other.write_bytes(b"another checkpoint")
    good = json.loads((finished["out"] / "scratch" / "ucf101" / "results.json").read_text())
    run_dir = tmp_path / "out" / "gdt" / "ucf101"
    requested = good["config"]
    _write(run_dir / "results.json", {**good, "init_method": "gdt", "init": {"source_sha256": sha256_file(raw)}})
    assert mismatch(run_dir, "done", requested, "gdt", weights_ids(converted)) is None
    assert mismatch(run_dir, "done", requested, "gdt", weights_ids(raw)) is None
    assert "was made from other weights" in mismatch(run_dir, "done", requested, "gdt", weights_ids(other))
    assert "was recorded for init 'gdt', not 'tclr'" in mismatch(run_dir, "done", requested, "tclr", None)
    changed = {**requested, "TRAIN": {**requested["TRAIN"], "LR": 0.5}}
    assert "TRAIN.LR" in mismatch(run_dir, "done", changed, "gdt", weights_ids(converted))
