"""Command lines of UCF-RC (``Deep-Temporal-Repetition-Counting/{train,test}.py`` and ``severe run repetition``)."""

from __future__ import annotations

from severe.tasks import TASKS
from severe.tasks.cli import retest_main, run_main


def train_main(argv: list[str], prog: str = "train.py") -> int:
    """Train a repetition counter from a pretrained backbone on UCFRep, test it, write results.json."""
    return run_main(TASKS["repetition"], argv, prog,
                    "UCF101 repetition counting (UCFRep): train the cycle-length state machine on a pretrained "
                    "backbone, then count the test videos and write results.json (MAE as a fraction, OBO). Configs: "
                    "ucfrep = SEVERE's protocol, ucfrep_split_streams = the upstream split-stream variant.")


def test_main(argv: list[str], prog: str = "test.py") -> int:
    """Re-test a trained UCF-RC run directory."""
    return retest_main(TASKS["repetition"], argv, prog,
                       "Count the UCFRep test videos with a trained run directory (its config.yaml, init.json and "
                       "last-epoch checkpoint). Writes results.json, or retest.json when the run already has results.")


main = train_main  # ``severe run repetition`` entry
