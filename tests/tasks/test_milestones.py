"""Milestones the user gives must lie within the epochs; milestones that come with the config may lie past a
shortened TRAIN.EPOCHS (a short trial of a recipe)."""

from __future__ import annotations

from severe import cli

RUN = ["run", "recognition", "domain/ucf101", "--init", "scratch"]


def _run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_given_milestones_past_the_epochs_are_refused_before_anything_is_created(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = _run(capsys, *RUN, "--data-root", tmp_path, "--out", out, "TRAIN.EPOCHS", "2",
                        "TRAIN.MILESTONES", "[1, 3]")
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2 and len(lines) == 1 and "milestone 3 lies past TRAIN.EPOCHS 2" in lines[0]
    assert not out.exists()
    code, _, err = _run(capsys, *RUN, "--print-config", "TRAIN.EPOCHS", "2", "TRAIN.MILESTONES", "[3]")
    assert code == 2 and "milestone 3 lies past TRAIN.EPOCHS 2" in err


def test_milestones_within_the_epochs_or_from_the_config_pass(capsys):
    code, out, _ = _run(capsys, *RUN, "--print-config", "TRAIN.EPOCHS", "2", "TRAIN.MILESTONES", "[2]")
    assert code == 0 and "  MILESTONES:\n  - 2\n" in out
    code, out, _ = _run(capsys, *RUN, "--print-config", "TRAIN.EPOCHS", "1")  # the config's [10, 15, 18] stay
    assert code == 0 and "  EPOCHS: 1\n" in out and "  MILESTONES:\n  - 10\n  - 15\n  - 18\n" in out
