"""The task registry and the one run lifecycle: every task extends the base schema, is reachable from
``severe run``, builds its backbone through lifecycle.make_backbone, honours MODEL.ARCH, speaks one
command form, and the PySlowFast aliases map onto the common names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from severe.cli import main as severe_main
from severe.config import to_plain
from severe.errors import SevereError
from severe.tasks import TASKS, entry_points, lifecycle
from severe.tasks.cli import parse
from severe.tasks.schema import SLOWFAST_ALIASES, base_defaults, flag_overrides
from tests.helpers import SLOWFAST_CONFIGS

SLOWFAST = SLOWFAST_CONFIGS
# one shipped config per registered task
CONFIGS = {"recognition": "domain/ucf101", "arrow_of_time": "task/arrow_of_time", "repetition": "ucfrep",
           "ava": str(SLOWFAST / "AVA" / "TINY_SYNTHETIC.yaml"), "charades": str(SLOWFAST / "Charades" / "TINY_SYNTHETIC.yaml")}
RUNS_WITH = {"arrow_of_time": "recognition"}  # a variant selected by the recognition config's EXPERIMENT.TASK


def _flat(node, prefix=""):
    out = set()
    for k, v in node.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


@pytest.fixture
def moco(synthetic_checkpoint) -> Path:
    return synthetic_checkpoint("moco", seed=1)


def _plan(name: str, *overrides: str):
    task = TASKS[RUNS_WITH.get(name, name)]
    return lifecycle.plan(task, CONFIGS[name], list(overrides))


def test_registry_and_entry_points():
    assert set(TASKS) == set(CONFIGS)
    assert set(entry_points()) == {"recognition", "linear", "test", "ava", "charades", "repetition", "repetition-test"}
    base = _flat(to_plain(base_defaults()))
    for name, task in TASKS.items():
        assert base <= _flat(to_plain(task.defaults())), name  # every schema extends the base one
    assert _plan("arrow_of_time", "RUN.INIT", "scratch").task is TASKS["arrow_of_time"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_model_arch_in_every_task(name, moco, monkeypatch):
    with pytest.raises(SevereError, match="MODEL.ARCH 'resnet50' is not a registered architecture"):
        _plan(name, "RUN.INIT", "scratch", "MODEL.ARCH", "resnet50")
    with pytest.raises(SevereError, match=r"differs from the architecture of the 'moco' weights \(r2plus1d_18\)"):
        _plan(name, *flag_overrides(init="moco", weights=str(moco)), "MODEL.ARCH", "r3d_18")
    plan = _plan(name, "RUN.INIT", "scratch", "MODEL.ARCH", "r3d_18")
    assert plan.meta["arch"] == "r3d_18"
    calls = []
    real = lifecycle.make_backbone
    monkeypatch.setattr(lifecycle, "make_backbone", lambda arch, weights=None: calls.append((arch, weights)) or real(arch, weights))
    model = plan.task.build_model(plan.cfg, plan.meta, plan.weights)
    assert calls == [("r3d_18", None)] and model.backbone.arch == "r3d_18"  # the one backbone builder
    with_weights = _plan(name, *flag_overrides(init="moco", weights=str(moco)))
    calls.clear()
    with_weights.task.build_model(with_weights.cfg, with_weights.meta, with_weights.weights)
    assert calls == [("r2plus1d_18", with_weights.weights)]


def test_one_command_form_and_the_alias_table(tmp_path):
    ava = TASKS["ava"]
    common = parse(ava, [CONFIGS["ava"], "--init", "scratch", "--data-root", str(tmp_path), "--out", str(tmp_path / "r"),
                         "TRAIN.EPOCHS", "1", "SEED", "3", "--no-progress"], "severe run ava")
    slowfast = parse(ava, ["--cfg", CONFIGS["ava"], "DATA.PATH_TO_DATA_DIR", str(tmp_path), "OUTPUT_DIR", str(tmp_path / "r"),
                           "SOLVER.MAX_EPOCH", "1", "RNG_SEED", "3", "MODEL.INIT_METHOD", "scratch", "--no-progress"],
                     "severe run ava")
    plans = []
    for args in (common, slowfast):
        overrides = [*args.overrides, *flag_overrides(init=args.init, weights=args.weights, data_root=args.data_root,
                                                      out=args.out)]
        plans.append(lifecycle.plan(ava, args.config, overrides))
    assert to_plain(plans[0].cfg) == to_plain(plans[1].cfg)
    cfg = plans[0].cfg
    assert (cfg.TRAIN.EPOCHS, cfg.SEED, cfg.RUN.DATA_ROOT, cfg.RUN.INIT) == (1, 3, str(tmp_path), "scratch")
    assert plans[0].run_dir() == tmp_path / "r"
    # an alias and its internal name in one source is an error; across sources the later one wins
    with pytest.raises(SevereError, match="SOLVER.MAX_EPOCH is another name of TRAIN.EPOCHS; give one of them"):
        lifecycle.load_task_config(ava, CONFIGS["ava"], ["SOLVER.MAX_EPOCH", "2", "TRAIN.EPOCHS", "2"])
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"_BASE_": str(SLOWFAST / "AVA" / "TINY_SYNTHETIC.yaml"), "RNG_SEED": 1, "SEED": 2}))
    with pytest.raises(SevereError, match="RNG_SEED is another name of SEED"):
        lifecycle.load_task_config(ava, both, [])
    assert lifecycle.load_task_config(ava, CONFIGS["ava"], ["SEED", "7"]).SEED == 7  # file says RNG_SEED 0
    assert set(SLOWFAST_ALIASES.values()) <= _flat(to_plain(ava.defaults()))
    # recognition does not take PySlowFast names
    with pytest.raises(SevereError, match="Non-existent"):
        _plan("recognition", "RUN.INIT", "scratch", "RNG_SEED", "1")


def test_resume_checks_the_config_but_not_its_locations(tmp_path):
    plan = _plan("recognition", "RUN.INIT", "scratch", "RUN.DATA_ROOT", "/a")
    lifecycle.write_or_check_config(tmp_path, plan.cfg)
    moved = _plan("recognition", "RUN.INIT", "scratch", "RUN.DATA_ROOT", "/b", "RUN.OUT_DIR", str(tmp_path))
    lifecycle.write_or_check_config(tmp_path, moved.cfg)  # data moved: fine
    with pytest.raises(SevereError, match="first difference: SEED"):
        lifecycle.write_or_check_config(tmp_path, _plan("recognition", "RUN.INIT", "scratch", "SEED", "5").cfg)


def test_every_run_command_takes_the_common_options(capsys):
    for name in ("recognition", "linear", "ava", "charades", "repetition"):
        with pytest.raises(SystemExit):
            severe_main(["run", name, "--help"])
        out = capsys.readouterr().out
        for option in ("--init", "--weights", "--data-root", "--out", "--resume", "--trust", "--no-progress", "CONFIG"):
            assert option in out, (name, option)


def test_option_values_stay_text():
    plan = _plan("recognition", *flag_overrides(init="scratch", out="2024", data_root="1e3"))
    assert (plan.cfg.RUN.OUT_DIR, plan.cfg.RUN.DATA_ROOT) == ("2024", "1e3") and plan.run_dir() == Path("2024")
