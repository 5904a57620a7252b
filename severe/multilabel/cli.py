"""Command line of the Charades experiment: ``severe run charades CONFIG|--cfg FILE ...`` (and tools/run_net.py)."""

from __future__ import annotations

from severe.tasks import TASKS
from severe.tasks.cli import run_main


def main(argv: list[str], prog: str = "severe run charades") -> int:
    """Train and/or test Charades multi-label classification as the config says; prints a JSON summary."""
    return run_main(TASKS["charades"], argv, prog, "Charades v1 multi-label classification: train, test with 10 "
                                                   "clips x 3 crops (max of sigmoid scores), report mAP.")
