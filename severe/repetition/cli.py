"""Command lines of UCF-RC (``Deep-Temporal-Repetition-Counting/{train,test}.py`` and ``severe run repetition``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from severe.data.registry import resolve_data_root
from severe.repetition.runner import CONFIG_DIR, default_run_dir, plan_run, retest_run, run

EPILOG = f"""configs: a path, or a name under {CONFIG_DIR} (ucfrep = SEVERE's protocol, ucfrep_split_streams =
the upstream split-stream variant).

KEY VALUE overrides (after the config) change any config key, e.g. TRAIN.EPOCHS 2 TRAIN.BATCH_SIZE 8
DATA.NUM_WORKERS 0 SEED 2 MODEL.STREAM_FEATURES split.

The input convention (ImageNet mean/std; TCLR: none, BGR) comes from the checkpoint and is applied in
training and testing alike. Multi-GPU: torchrun --nproc_per_node N train.py CONFIG ... (TRAIN.BATCH_SIZE
stays the global batch)."""


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def train_main(argv: list[str], prog: str = "train.py") -> int:
    """Train a repetition counter from a pretrained R(2+1)D-18 on UCFRep, test it, write results.json."""
    p = argparse.ArgumentParser(prog=prog, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="UCF101 repetition counting (UCFRep): train the cycle-length state machine "
                                            "on a pretrained R(2+1)D-18, then count the test videos and write "
                                            "results.json (MAE as a fraction, OBO).")
    p.add_argument("config", metavar="CONFIG", help="config (path or name under Deep-Temporal-Repetition-Counting/configs)")
    p.add_argument("overrides", metavar="KEY VALUE", nargs="*", help="config overrides")
    p.add_argument("--init", required=True, metavar="METHOD",
                   help="initialisation: scratch, or the method of --weights (supervised, selavi, moco, video_moco, "
                        "pretext_contrast, rspnet, avid_cma, ctp, tubelet_contrast, tclr, gdt)")
    p.add_argument("--weights", metavar="PATH", help="converted weights (severe convert) or the published checkpoint")
    p.add_argument("--data-root", metavar="DIR", help="data root holding ucfrep/ (default: $SEVERE_DATA)")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/<experiment>/<method>/seed<SEED>)")
    p.add_argument("--resume", action="store_true", help="continue an unfinished run in --out exactly where it stopped")
    p.add_argument("--trust", action="store_true", help="allow unpickling Python objects in a raw checkpoint you trust")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    args = p.parse_intermixed_args(argv)
    _setup_logging()
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
    _setup_logging()
    record = retest_run(Path(args.run_dir), resolve_data_root(args.data_root), progress=not args.no_progress)
    print(json.dumps({"run_dir": args.run_dir, "mae": record["metrics"]["mae"], "obo": record["metrics"]["obo"]}))
    return 0


main = train_main  # ``severe run repetition`` entry
