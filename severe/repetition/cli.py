"""Command lines of UCF-RC (``Deep-Temporal-Repetition-Counting/{train,test}.py`` and ``severe run repetition``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from severe.cli import experiment_parser, setup_logging
from severe.data.registry import resolve_data_root
from severe.repetition.runner import CONFIG_DIR, default_run_dir, plan_run, retest_run, run

EPILOG = f"""configs: a path, or a name under {CONFIG_DIR} (ucfrep = SEVERE's protocol, ucfrep_split_streams =
the upstream split-stream variant).

KEY VALUE overrides (after the config) change any config key, e.g. TRAIN.EPOCHS 2 TRAIN.BATCH_SIZE 8
DATA.NUM_WORKERS 0 SEED 2 MODEL.STREAM_FEATURES split.

The input convention (ImageNet mean/std; TCLR: none, BGR) comes from the checkpoint and is applied in
training and testing alike. Multi-GPU: torchrun --nproc_per_node N train.py CONFIG ... (TRAIN.BATCH_SIZE
stays the global batch)."""


def train_main(argv: list[str], prog: str = "train.py") -> int:
    """Train a repetition counter from a pretrained R(2+1)D-18 on UCFRep, test it, write results.json."""
    p = experiment_parser(prog, "UCF101 repetition counting (UCFRep): train the cycle-length state machine on a "
                                "pretrained R(2+1)D-18, then count the test videos and write results.json (MAE as a "
                                "fraction, OBO).", EPILOG,
                          config_help="config (path or name under Deep-Temporal-Repetition-Counting/configs)",
                          data_root_help="data root holding ucfrep/ (default: $SEVERE_DATA)")
    args = p.parse_intermixed_args(argv)
    setup_logging()
    plan = plan_run(args.config, args.init, args.weights, args.overrides, trust=args.trust)
    data_root = resolve_data_root(args.data_root)
    out = Path(args.out) if args.out else default_run_dir(plan.cfg, plan.method)
    results = run(plan, data_root, out, resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"run_dir": str(out), "experiment_id": results["experiment_id"], "init": results["init_method"],
                      "mae": results["metrics"]["mae"], "obo": results["metrics"]["obo"]}))
    return 0


def test_main(argv: list[str], prog: str = "test.py") -> int:
    """Re-test a trained UCF-RC run directory."""
    p = argparse.ArgumentParser(prog=prog, description="Count the UCFRep test videos with a trained run directory (its "
                                "config.yaml, init.json and last-epoch checkpoint). Writes results.json, or retest.json "
                                "when the run already has results.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-root", metavar="DIR", help="data root holding ucfrep/ (default: $SEVERE_DATA)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    setup_logging()
    record = retest_run(Path(args.run_dir), resolve_data_root(args.data_root), progress=not args.no_progress)
    print(json.dumps({"run_dir": args.run_dir, "mae": record["metrics"]["mae"], "obo": record["metrics"]["obo"]}))
    return 0


main = train_main  # ``severe run repetition`` entry
