"""Finetune a pretrained R(2+1)D-18 on a SEVERE recognition experiment and test it.

    python finetune.py configs/domain/ucf101.yaml --init gdt --weights ../checkpoints_pretraining/gdt/gdt_K400.pth --trust
"""
import sys

from severe.cli import run_entry
from severe.recognition.cli import finetune_main

if __name__ == "__main__":
    sys.exit(run_entry(finetune_main, sys.argv[1:], "finetune.py"))
