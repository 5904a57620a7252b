"""Finetune a pretrained R(2+1)D-18 on a SEVERE recognition experiment and test it.

    python finetune.py configs/domain/ucf101.yaml --init gdt --weights ../checkpoints_pretraining/gdt/gdt_K400.pth --trust

Add --print-config to print the resolved config (per-method rules as comments) and exit without running.
"""
import sys

from severe.cli import run_entry
from severe.recognition.cli import finetune_main

if __name__ == "__main__":
    sys.exit(run_entry(finetune_main, sys.argv[1:], "finetune.py"))
