"""Command lines of the recognition experiments (``ssl_benchmark/*.py`` and ``severe run recognition``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from severe.cli import experiment_parser, setup_logging
from severe.data.registry import resolve_data_root
from severe.recognition.runner import CONFIG_DIR, default_run_dir, plan_run, run, retest_run

EPILOG = f"""configs: a path, or a name under {CONFIG_DIR} such as domain/ucf101, samples/gym99_1000,
granularity/gym_fx_s1, linear/k400, task/arrow_of_time.

KEY VALUE overrides (after the config) change any config key, e.g. TRAIN.EPOCHS 2 DATA.NUM_WORKERS 0 SEED 1.
Per-initialisation protocol exceptions (AVID-CMA lr, TCLR clip length, scratch schedules) are applied
automatically from --init and recorded in the run's init.json and results.json.

Multi-GPU: torchrun --nproc_per_node N finetune.py CONFIG ... (TRAIN.BATCH_SIZE stays the global batch)."""


def _run_parser(prog: str, description: str) -> argparse.ArgumentParser:
    return experiment_parser(prog, description, EPILOG,
                             config_help="experiment config (path or name under ssl_benchmark/configs)")


def _execute(args: argparse.Namespace, force: list[str]) -> int:
    setup_logging()
    plan = plan_run(args.config, args.init, args.weights, args.overrides, trust=args.trust, force=force)
    data_root = resolve_data_root(args.data_root)
    out = Path(args.out) if args.out else default_run_dir(plan.cfg, plan.method)
    results = run(plan, data_root, out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"run_dir": str(out), "experiment_id": results["experiment_id"], "init": results["init_method"],
                      results["primary"]["metric"]: results["primary"]["value"]}))
    return 0


def finetune_main(argv: list[str], prog: str = "finetune.py") -> int:
    """Run a recognition experiment as its config says (finetune, linear or knn), then test it."""
    parser = _run_parser(prog, "Finetune (or probe, as the config says) a pretrained R(2+1)D-18 on a recognition "
                               "experiment, then test it with the dense 10-clip protocol and write results.json.")
    return _execute(parser.parse_intermixed_args(argv), force=[])


def linear_main(argv: list[str], prog: str = "linear_eval.py") -> int:
    """Linear probe: the config's dataset and schedule with a frozen backbone (BN in eval mode)."""
    parser = _run_parser(prog, "Linear evaluation: train only a new linear head on the frozen backbone (BatchNorm "
                               "statistics frozen too), then test densely. Use configs under linear/ for SEVERE's "
                               "probe settings; a kNN config runs the kNN probe.")
    args = parser.parse_intermixed_args(argv)
    from severe.config import load_config
    from severe.recognition.config import recognition_defaults
    from severe.recognition.runner import find_config

    mode = load_config(recognition_defaults(), find_config(args.config)).TRAIN.MODE
    force = [] if mode == "knn" else ["TRAIN.MODE", "linear", "MODEL.HEAD_INIT", "normal"]
    return _execute(args, force)


def test_main(argv: list[str], prog: str = "test.py") -> int:
    """Re-test a trained run directory with the dense protocol."""
    p = argparse.ArgumentParser(prog=prog, description="Test a trained run directory (its config.yaml, init.json and "
                                "last-epoch checkpoint) with the dense 10-clip protocol. Writes results.json, or "
                                "retest.json when the run already has results.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-root", metavar="DIR", help="data root (default: $SEVERE_DATA)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    setup_logging()
    record = retest_run(Path(args.run_dir), resolve_data_root(args.data_root), progress=not args.no_progress)
    print(json.dumps({"run_dir": args.run_dir, **{k: record["metrics"][k] for k in ("video_top1", "video_top5", "mean_class_accuracy")}}))
    return 0
