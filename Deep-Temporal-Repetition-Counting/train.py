"""Train and test UCF101 repetition counting (UCFRep) from a pretrained R(2+1)D-18.

    python train.py configs/ucfrep.yaml --init gdt --weights ../checkpoints_pretraining/gdt/gdt_K400.pth --trust

Add --print-config to print the resolved config (per-method rules as comments) and exit without running.
"""
import sys

from severe.cli import run_entry
from severe.repetition.cli import train_main

if __name__ == "__main__":
    sys.exit(run_entry(train_main, sys.argv[1:], "train.py"))
