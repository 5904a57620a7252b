"""severe benchmark: suite expansion, override routing, skip/resume, the SLURM job spec, a real local run."""

from __future__ import annotations

import json

import pytest

from severe.benchmark.launch import SlurmSettings, plan_jobs, run_job, slurm_specs
from severe.benchmark.runners import route_overrides
from severe.cli import main as severe_main
from severe.report.collect import collect
from severe.errors import SevereError
from severe.experiments import EXPERIMENTS, suite


def test_suites_expand_to_existing_configs():
    severe = [e.id for e in suite("severe")]
    assert severe == ["ssv2", "gym99", "ucf101_1000", "gym99_1000", "gym_fx_s1", "gym_ub_s1", "ucfrep", "charades"]
    assert [e.factor for e in suite("severe")] == ["domain"] * 2 + ["samples"] * 2 + ["granularity"] * 2 + ["task"] * 2
    full = suite("full")
    assert len(full) == len({e.id for e in full}) >= 37
    for e in full:
        assert e.config_path.is_file(), e
    assert {e.id for e in suite("tasks")} == {"ucfrep", "charades", "ava", "arrow_of_time"}
    assert [e.id for e in suite("samples", ["gym99_2000", "ucf101_1000"])] == ["ucf101_1000", "gym99_2000"]
    with pytest.raises(SevereError, match="not in suite 'severe'"):
        suite("severe", ["ava"])
    with pytest.raises(SevereError, match="unknown suite"):
        suite("everything")


def test_overrides_are_routed_by_config_schema():
    exps = suite("severe")
    routed = route_overrides(exps, ["recognition:TRAIN.EPOCHS", "2", "TRAIN.BATCH_SIZE", "4", "SOLVER.MAX_EPOCH", "1"])
    assert routed["ssv2"] == ["TRAIN.EPOCHS", "2", "TRAIN.BATCH_SIZE", "4"]
    assert routed["ucfrep"] == ["TRAIN.BATCH_SIZE", "4"]  # repetition has TRAIN.BATCH_SIZE, not the prefixed key
    assert routed["charades"] == ["TRAIN.BATCH_SIZE", "4", "SOLVER.MAX_EPOCH", "1"]  # PySlowFast has it too
    with pytest.raises(SevereError, match="no selected experiment has the config key 'NOPE.KEY'"):
        route_overrides(exps, ["NOPE.KEY", "1"])
    with pytest.raises(SevereError, match="unknown runner 'slowfast'"):
        route_overrides(exps, ["slowfast:SOLVER.MAX_EPOCH", "1"])


def test_jobs_skip_finished_and_resume_unfinished(tmp_path):
    exps = [EXPERIMENTS["ucf101"], EXPERIMENTS["ssv2"], EXPERIMENTS["charades"]]
    (tmp_path / "out" / "gdt" / "ucf101").mkdir(parents=True)
    (tmp_path / "out" / "gdt" / "ucf101" / "results.json").write_text("{}")
    (tmp_path / "out" / "gdt" / "ssv2").mkdir(parents=True)
    (tmp_path / "out" / "gdt" / "ssv2" / "checkpoint_last.pt").write_bytes(b"x")
    jobs = plan_jobs(exps, "gdt", "w.pth", tmp_path / "data", tmp_path / "out", True, {"ssv2": ["TRAIN.EPOCHS", "1"]})
    assert [j.status for j in jobs] == ["done", "resume", "new"]
    ssv2 = jobs[1].argv
    assert ssv2[:2] == [str(EXPERIMENTS["ssv2"].config_path), "--init"] and "--resume" in ssv2 and "--trust" in ssv2
    assert ssv2[-4:] == ["--weights", "w.pth", "TRAIN.EPOCHS", "1"]
    charades = jobs[2].argv  # one command form for every task
    assert charades[:3] == [str(EXPERIMENTS["charades"].config_path), "--init", "gdt"]
    assert charades[charades.index("--out") + 1] == str(tmp_path / "out" / "gdt" / "charades")
    assert charades[charades.index("--data-root") + 1] == str(tmp_path / "data")
    assert charades[-2:] == ["--weights", "w.pth"] and "--cfg" not in charades and "MODEL.INIT_METHOD" not in charades


def test_seeds_give_one_run_per_seed_through_each_runners_key(tmp_path):
    exps = [EXPERIMENTS["ucf101"], EXPERIMENTS["ucfrep"], EXPERIMENTS["charades"]]
    (tmp_path / "out" / "gdt" / "ucf101" / "seed2").mkdir(parents=True)
    (tmp_path / "out" / "gdt" / "ucf101" / "seed2" / "results.json").write_text("{}")
    jobs = plan_jobs(exps, "gdt", "w.pth", tmp_path / "data", tmp_path / "out", False, {}, seeds=[1, 2])
    assert [(j.name, j.status) for j in jobs] == [("ucf101/seed1", "new"), ("ucf101/seed2", "done"), ("ucfrep/seed1", "new"),
                                                  ("ucfrep/seed2", "new"), ("charades/seed1", "new"), ("charades/seed2", "new")]
    assert jobs[0].argv[-2:] == ["SEED", "1"] and jobs[3].argv[-2:] == ["SEED", "2"] and jobs[5].argv[-2:] == ["SEED", "2"]
    assert jobs[5].argv[jobs[5].argv.index("--out") + 1] == str(tmp_path / "out" / "gdt" / "charades" / "seed2")
    assert slurm_specs(jobs, SlurmSettings())[0]["parameters"]["job_name"] == "severe-ucf101-seed1"
    with pytest.raises(SevereError, match="charades: RNG_SEED given both as an override and through --seeds"):
        plan_jobs(exps, "gdt", "w.pth", tmp_path, tmp_path / "out", False, {"charades": ["RNG_SEED", "3"]}, seeds=[1])
    with pytest.raises(SevereError, match="each seed once"):
        plan_jobs(exps, "gdt", "w.pth", tmp_path, tmp_path / "out", False, {}, seeds=[1, 1])


def test_slurm_job_spec_without_submitting(tmp_path):
    jobs = plan_jobs(suite("severe"), "tclr", "t.pth", tmp_path, tmp_path / "out", True, {})
    specs = slurm_specs(jobs, SlurmSettings(partition="gpu", gpus=2, cpus=16, hours=12, mem="64G"))
    assert len(specs) == 8 and specs[0]["function"] is run_job
    assert specs[0]["args"][:2] == ("severe.recognition.cli", "finetune_main")
    params = specs[0]["parameters"]
    assert params == {"job_name": "severe-ssv2", "gpus_per_node": 2, "ntasks_per_node": 1, "cpus_per_task": 16,
                      "time": 720, "partition": "gpu", "mem": "64G"}
    from submitit.slurm.slurm import _make_sbatch_string  # the sbatch file submitit would write

    text = _make_sbatch_string(command="python -m x", folder=str(tmp_path), **params)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --time=720", "#SBATCH --cpus-per-task=16",
                 "#SBATCH --job-name=severe-ssv2", "#SBATCH --mem=64G"):
        assert line in text


def test_benchmark_cli_errors(tmp_path, capsys):
    assert severe_main(["benchmark", "--init", "gdt", "--out", str(tmp_path), "--data-root", str(tmp_path)]) == 2
    assert "needs --weights" in capsys.readouterr().err
    assert severe_main(["benchmark", "--init", "gdt", "--weights", str(tmp_path / "no.pth"), "--out", str(tmp_path),
                        "--data-root", str(tmp_path)]) == 2
    assert "weights file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_local_benchmark_runs_then_skips(synthetic_root, tmp_path, capsys):
    root = synthetic_root
    args = ["benchmark", "--init", "scratch", "--data-root", str(root), "--out", str(tmp_path / "out"), "--suite", "domains",
            "--only", "ucf101", "--no-progress", "recognition:TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "4", "DATA.NUM_FRAMES", "4",
            "DATA.CROP", "32", "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1",
            "DATA.TEST_CLIPS", "1"]
    assert severe_main(args) == 0
    results = tmp_path / "out" / "scratch" / "ucf101" / "results.json"
    first = json.loads(results.read_text())
    assert first["experiment_id"] == "ucf101" and first["config"]["TRAIN"]["EPOCHS"] == 1
    assert first["primary"]["metric"] == EXPERIMENTS["ucf101"].metric  # what the experiment table says it shows
    capsys.readouterr()
    assert severe_main(args) == 0  # idempotent: the finished experiment is skipped, nothing rewritten
    assert "skipped (results.json exists)" in capsys.readouterr().out
    assert json.loads(results.read_text())["finished_at"] == first["finished_at"]
    # two more seeds into their own directories; the report averages the three runs of the cell
    assert severe_main([*args, "--seeds", "1", "2"]) == 0
    for seed in (1, 2):
        record = json.loads((tmp_path / "out" / "scratch" / "ucf101" / f"seed{seed}" / "results.json").read_text())
        assert record["seed"] == seed and record["config"]["SEED"] == seed
    cells = collect([tmp_path / "out"]).cells
    (cell,) = cells.values()
    assert cell.n == 3 and cell.seeds == (1, 2, 100)
