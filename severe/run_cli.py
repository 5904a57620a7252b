"""``severe run TASK ...``: the same entry points as the subprojects' scripts, from anywhere."""

from __future__ import annotations

import importlib
import sys

from severe.errors import SevereError

# task -> (module, function, what it runs)
TASKS: dict[str, tuple[str, str, str]] = {
    "recognition": ("severe.recognition.cli", "finetune_main", "finetune / linear / kNN recognition experiment (ssl_benchmark)"),
    "linear": ("severe.recognition.cli", "linear_main", "linear probe on a frozen backbone (ssl_benchmark/linear_eval.py)"),
    "test": ("severe.recognition.cli", "test_main", "re-test a trained recognition run directory (ssl_benchmark/test.py)"),
    "ava": ("severe.detection.cli", "main", "AVA v2.2 detection (SlowFast-ssl-vssl/tools/run_net.py)"),
    "charades": ("severe.multilabel.cli", "main", "Charades multi-label classification (SlowFast-ssl-vssl/tools/run_net.py)"),
    "repetition": ("severe.repetition.cli", "train_main", "UCF101 repetition counting (Deep-Temporal-Repetition-Counting/train.py)"),
    "repetition-test": ("severe.repetition.cli", "test_main", "re-test a trained repetition-counting run directory"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: severe run TASK [ARGS ...]\n\ntasks:")
        for name, (_, _, what) in TASKS.items():
            print(f"  {name:<12} {what}")
        print("\nRun 'severe run TASK --help' for the options of one task.")
        return 0 if argv else 2
    if argv[0] not in TASKS:
        raise SevereError(f"unknown task '{argv[0]}'; known: {', '.join(TASKS)}")
    module, function, _ = TASKS[argv[0]]
    return getattr(importlib.import_module(module), function)(argv[1:], prog=f"severe run {argv[0]}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
