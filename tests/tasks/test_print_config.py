"""``--print-config`` on every experiment entry point: the resolved config as YAML on stdout, the applied
per-method rules as comments, exit 0, no data read, no weights read, nothing created. Also: the per-method
rules are selected after the command-line overrides (docs/protocol.md §3).

The expected values are the protocol's numbers written out here, not read from the rule table.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import yaml

from severe.cli import main as severe_main
from tests.helpers import REPO, SLOWFAST_CONFIGS

NOT_A_CHECKPOINT = b"these bytes are no checkpoint: reading them as weights would fail"


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """An empty working directory (a created run directory would show up here) and no $SEVERE_DATA."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("SEVERE_DATA", raising=False)
    return work


@pytest.fixture
def fake_weights(tmp_path) -> Path:
    path = tmp_path / "weights.pth"
    path.write_bytes(NOT_A_CHECKPOINT)
    return path


def _printed(capsys, code: int) -> tuple[dict, list[str]]:
    out = capsys.readouterr().out
    assert code == 0
    comments = [line for line in out.splitlines() if line.startswith("#")]
    return yaml.safe_load(out), comments


def _run(args: list[str], capsys) -> tuple[dict, list[str]]:
    return _printed(capsys, severe_main(["run", *args, "--print-config"]))


def _schedule(cfg: dict) -> tuple:
    return cfg["TRAIN"]["EPOCHS"], cfg["TRAIN"]["MILESTONES"], cfg["TRAIN"]["WEIGHT_DECAY"], cfg["TRAIN"]["LR"]


def test_rules_follow_the_command_line_and_nothing_is_read_or_created(cwd, fake_weights, capsys):
    # domain/gym99 made a 1000-example run on the command line gets Tubelet-Contrast's 1000-sample schedule
    cfg, comments = _run(["recognition", "domain/gym99", "--init", "tubelet_contrast", "--weights", str(fake_weights),
                          "DATA.NUM_EXAMPLES", "1000"], capsys)
    assert cfg["DATA"]["NUM_EXAMPLES"] == 1000 and cfg["RUN"]["INIT"] == "tubelet_contrast"
    assert _schedule(cfg)[:2] == (18, [8, 13, 16])
    assert any("tubelet_contrast" in c and "TRAIN.EPOCHS=18" in c for c in comments), comments
    # ... and without the override, the plain full-data row
    cfg, comments = _run(["recognition", "domain/gym99", "--init", "tubelet_contrast", "--weights",
                          str(fake_weights)], capsys)
    assert _schedule(cfg) == (16, [6, 10, 14], 0.0, 1e-4)
    assert any(c.endswith("rules applied (docs/protocol.md §3): none") for c in comments), comments
    # a 1000-sample config made a full-data run gets the full-data scratch schedule
    cfg, _ = _run(["recognition", "samples/ucf101_1000", "--init", "scratch", "DATA.NUM_EXAMPLES", "0"], capsys)
    assert _schedule(cfg)[:3] == (20, [10, 15, 18], 1e-4)
    # scratch on a 1000-sample subset: the plain 1000-sample settings
    cfg, _ = _run(["recognition", "samples/gym99_1000", "--init", "scratch"], capsys)
    assert _schedule(cfg) == (16, [6, 10, 14], 0.0, 1e-4)
    # AVID-CMA: lr 1e-3 in the Adam recipe, its own base lr 0.0025 in EK-100; TRAIN.MODE linear drops the rule
    cfg, comments = _run(["recognition", "domain/ucf101", "--init", "avid_cma", "--weights", str(fake_weights)], capsys)
    assert cfg["TRAIN"]["LR"] == 1e-3 and any("avid_cma" in c and "TRAIN.LR=0.001" in c for c in comments)
    cfg, _ = _run(["recognition", "domain/ek100", "--init", "avid_cma", "--weights", str(fake_weights)], capsys)
    assert (cfg["TRAIN"]["LR"], cfg["TRAIN"]["OPTIMIZER"]) == (0.0025, "sgd")
    cfg, _ = _run(["recognition", "domain/ucf101", "--init", "avid_cma", "--weights", str(fake_weights),
                   "TRAIN.MODE", "linear"], capsys)
    assert cfg["TRAIN"]["LR"] == 1e-4
    # the command line still wins over a rule, and the comment says so
    cfg, comments = _run(["recognition", "domain/ucf101", "--init", "avid_cma", "--weights", str(fake_weights),
                          "TRAIN.LR", "0.5"], capsys)
    assert cfg["TRAIN"]["LR"] == 0.5 and any("set on the command line: TRAIN.LR" in c for c in comments)
    assert list(cwd.iterdir()) == []


def test_every_task_prints_its_config(cwd, capsys):
    cfg, _ = _run(["repetition", "ucfrep", "--init", "scratch", "TRAIN.EPOCHS", "3"], capsys)
    assert cfg["TRAIN"]["EPOCHS"] == 3 and cfg["RUN"]["INIT"] == "scratch"
    cfg, _ = _run(["linear", "linear/ucf101", "--init", "scratch"], capsys)
    assert (cfg["TRAIN"]["MODE"], cfg["MODEL"]["HEAD_INIT"]) == ("linear", "normal")
    cfg, comments = _run(["ava", str(SLOWFAST_CONFIGS / "AVA" / "R2PLUS1D_18_32x2_112.yaml"), "--init", "scratch",
                          "SEED", "7"], capsys)
    assert cfg["SEED"] == 7 and comments[0].startswith("# ava:")
    cfg, comments = _run(["charades", str(SLOWFAST_CONFIGS / "Charades" / "R2PLUS1D_18_32x8_112.yaml"), "--init",
                          "scratch"], capsys)
    assert comments[0].startswith("# charades:") and cfg["RUN"]["INIT"] == "scratch"
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("script,args,key", [
    ("ssl_benchmark/finetune.py", ["domain/ucf101", "--init", "scratch", "TRAIN.EPOCHS", "5"], ("TRAIN", "EPOCHS", 5)),
    ("ssl_benchmark/linear_eval.py", ["linear/ucf101", "--init", "scratch"], ("TRAIN", "MODE", "linear")),
    ("SlowFast-ssl-vssl/tools/run_net.py", ["--cfg", str(SLOWFAST_CONFIGS / "Charades" / "R2PLUS1D_18_32x8_112.yaml"),
                                            "MODEL.INIT_METHOD", "scratch", "RNG_SEED", "3"], ("SEED", None, 3)),
    ("Deep-Temporal-Repetition-Counting/train.py", ["ucfrep", "--init", "scratch"], ("RUN", "INIT", "scratch")),
])
def test_subproject_scripts(script, args, key, cwd, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script, *args, "--print-config"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / script), run_name="__main__")
    cfg, comments = _printed(capsys, done.value.code)
    section, name, value = key
    assert (cfg[section] if name is None else cfg[section][name]) == value
    assert any("rules applied" in c for c in comments)
    assert list(cwd.iterdir()) == []


def test_test_scripts_print_a_run_directory_config(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("EXPERIMENT: {ID: ucf101}\nTRAIN: {LR: 0.001}\n", encoding="utf-8")
    (run_dir / "init.json").write_text('{"method": "avid_cma", "rules": [{"why": "lr 1e-3", "settings": '
                                       '{"TRAIN.LR": 0.001}}]}', encoding="utf-8")
    cfg, comments = _printed(capsys, severe_main(["run", "test", str(run_dir), "--print-config"]))
    assert cfg["TRAIN"]["LR"] == 0.001 and cfg["EXPERIMENT"]["ID"] == "ucf101"
    assert any("avid_cma: lr 1e-3: TRAIN.LR=0.001" in c for c in comments), comments
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "init.json"]
