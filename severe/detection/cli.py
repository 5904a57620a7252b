"""Command line of the AVA experiment: ``severe run ava CONFIG|--cfg FILE ...`` (and tools/run_net.py)."""

from __future__ import annotations

from severe.tasks import TASKS
from severe.tasks.cli import run_main


def main(argv: list[str], prog: str = "severe run ava") -> int:
    """Train and/or test AVA v2.2 detection as the config says; prints a one-line JSON summary."""
    return run_main(TASKS["ava"], argv, prog, "AVA v2.2 spatio-temporal action detection with a video backbone and a "
                                              "RoI head: train, write detections.csv, report frame-mAP@0.5.")
