"""Command line of the Charades experiment: ``severe run charades --cfg FILE [KEY VALUE ...]`` (and tools/run_net.py)."""

from __future__ import annotations

import json

from severe.cli import setup_logging
from severe.slowfast_config import load_task_config, task_parser


def main(argv: list[str], prog: str = "severe run charades") -> int:
    """Train and/or test Charades multi-label classification as the config says; prints a JSON summary."""
    parser = task_parser(prog, "Charades v1 multi-label classification with an R(2+1)D-18 (tasks.md §2): train, "
                               "test with 10 clips x 3 crops (max of sigmoid scores), report mAP.")
    args = parser.parse_intermixed_args(argv)
    cfg = load_task_config("charades", args.cfg, args.opts)
    setup_logging()
    from severe.multilabel.runner import run  # heavy imports after the config is known to be valid

    results = run(cfg, trust=args.trust, resume=args.resume, progress=not args.no_progress)
    if results is not None:
        print(json.dumps({"task": "charades", "init": results["init_method"], "seed": results["seed"],
                          "mAP": results["primary"]["value"]}))
    return 0
