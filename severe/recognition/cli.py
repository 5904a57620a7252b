"""Command lines of the recognition experiments (``ssl_benchmark/*.py`` and ``severe run recognition|linear|test``)."""

from __future__ import annotations

from severe.config import load_config
from severe.tasks import TASKS
from severe.tasks.cli import execute, parse, print_summary, retest_main, run_main


def finetune_main(argv: list[str], prog: str = "finetune.py") -> int:
    """Run a recognition experiment as its config says (finetune, linear or knn), then test it."""
    return run_main(TASKS["recognition"], argv, prog,
                    "Finetune (or probe, as the config says) a pretrained backbone on a recognition experiment, then "
                    "test it with the dense 10-clip protocol and write results.json.")


def linear_main(argv: list[str], prog: str = "linear_eval.py") -> int:
    """Linear probe: the config's dataset and schedule with a frozen backbone (BN in eval mode)."""
    task = TASKS["recognition"]
    args = parse(task, argv, prog, "Linear evaluation: train only a new linear head on the frozen backbone (BatchNorm "
                                   "statistics frozen too), then test densely. Use configs under linear/ for SEVERE's "
                                   "probe settings; a kNN config runs the kNN probe.")
    mode = load_config(task.defaults(), task.find_config(args.config)).TRAIN.MODE
    force = [] if mode == "knn" else ["TRAIN.MODE", "linear", "MODEL.HEAD_INIT", "normal"]
    record, run_dir = execute(task, args, force)
    print_summary(task, record, run_dir)
    return 0


def test_main(argv: list[str], prog: str = "test.py") -> int:
    """Re-test a trained run directory with the dense protocol."""
    return retest_main(TASKS["recognition"], argv, prog,
                       "Test a trained run directory (its config.yaml, init.json and last-epoch checkpoint) with the "
                       "dense 10-clip protocol. Writes results.json, or retest.json when the run already has results.")
