"""Command line of the AVA experiment: ``severe run ava --cfg FILE [KEY VALUE ...]`` (and tools/run_net.py)."""

from __future__ import annotations

import json

from severe.cli import setup_logging
from severe.slowfast_config import load_task_config, task_parser


def main(argv: list[str], prog: str = "severe run ava") -> int:
    """Train and/or test AVA v2.2 detection as the config says; prints a one-line JSON summary."""
    parser = task_parser(prog, "AVA v2.2 spatio-temporal action detection with an R(2+1)D-18 trunk and a RoI head "
                               "(tasks.md §1): train, write detections.csv, report frame-mAP@0.5.")
    args = parser.parse_intermixed_args(argv)
    cfg = load_task_config("ava", args.cfg, args.opts)
    setup_logging()
    from severe.detection.runner import run  # heavy imports after the config is known to be valid

    results = run(cfg, trust=args.trust, resume=args.resume, progress=not args.no_progress)
    if results is not None:
        print(json.dumps({"task": "ava", "init": results["init_method"], "mAP": results["primary"]["value"]}))
    return 0
