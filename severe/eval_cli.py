"""``severe eval TASK ...``: evaluate prediction files with the official metric of a task.

Tasks (one table, one function each):
  ava   frame-mAP@0.5 of an AVA detection csv against ground truth (docs/tasks.md §1.5)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from severe.errors import SevereError


def eval_ava(argv: list[str], prog: str) -> int:
    """``severe eval ava --groundtruth GT.csv --detections DET.csv --labelmap MAP.pbtxt [--exclusions X.csv] [--json]``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="AVA frame-mAP@0.5 (PascalBoxes_Precision/mAP@0.5IOU) with the official evaluator's "
        "semantics: label-map classes only, detections matched per image in file order (not by score), "
        "VOC all-point AP, mean over classes with ground truth.",
    )
    p.add_argument("--groundtruth", required=True, help="ground-truth csv (e.g. ava_val_v2.2.csv)")
    p.add_argument("--detections", required=True, help="detection csv: video,time,x1,y1,x2,y2,class,score")
    p.add_argument("--labelmap", required=True, help="label map pbtxt (e.g. ava_action_list_v2.2_for_activitynet_2019.pbtxt)")
    p.add_argument("--exclusions", default=None, help="excluded-timestamps csv (e.g. ava_val_excluded_timestamps_v2.2.csv)")
    p.add_argument("--json", action="store_true", help='print {"mAP": ..., "per_class": {id: AP or null}} as JSON')
    args = p.parse_args(argv)

    from severe.data.readers.ava import read_boxes_csv, read_exclusions
    from severe.metrics.ava import frame_map, read_labelmap

    labelmap = read_labelmap(args.labelmap)
    exclusions = read_exclusions(args.exclusions) if args.exclusions else set()
    gt = read_boxes_csv(args.groundtruth)
    det = read_boxes_csv(args.detections, require_score=True)
    result = frame_map(gt, det, labelmap, exclusions)
    if args.json:
        out = {"mAP": result["mAP"], "per_class": {str(c): ap for c, ap in result["per_class"].items()}}
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'id':>4}  {'AP (%)':>7}  name")
    for c, ap in result["per_class"].items():
        shown = "   n/a" if ap is None else f"{100 * ap:7.2f}"
        print(f"{c:>4}  {shown:>7}  {labelmap[c]}")
    evaluated = sum(ap is not None for ap in result["per_class"].values())
    print(f"mAP@0.5IOU: {100 * result['mAP']:.2f} % over {evaluated} classes with ground truth "
          f"(of {len(labelmap)} in the label map; n/a = no ground truth)")
    return 0


# task -> (function(argv, prog) -> exit code, one-line help). One table, no if-chain.
TASKS: dict[str, tuple[Callable[[list[str], str], int], str]] = {
    "ava": (eval_ava, "AVA frame-mAP@0.5 of a detection csv (official evaluator semantics)"),
}


def main(argv: list[str], prog: str = "severe eval") -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} TASK [ARGS ...]\n\ntasks:")
        for name, (_, what) in TASKS.items():
            print(f"  {name:<8} {what}")
        print(f"\nRun '{prog} TASK --help' for the options of one task.")
        return 0 if argv else 2
    if argv[0] not in TASKS:
        raise SevereError(f"unknown eval task '{argv[0]}'; known: {', '.join(TASKS)}")
    fn, _ = TASKS[argv[0]]
    return fn(argv[1:], f"{prog} {argv[0]}")


if __name__ == "__main__":
    from severe.cli import run_entry

    sys.exit(run_entry(lambda args, prog: main(args, prog), sys.argv[1:], "severe eval"))
