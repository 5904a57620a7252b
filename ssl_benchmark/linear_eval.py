"""Linear evaluation (frozen backbone, new linear head) on a SEVERE recognition experiment.

    python linear_eval.py configs/linear/ucf101.yaml --init rspnet --weights converted/rspnet.pth

Add --print-config to print the resolved config (per-method rules as comments) and exit without running.
"""
import sys

from severe.cli import run_entry
from severe.recognition.cli import linear_main

if __name__ == "__main__":
    sys.exit(run_entry(linear_main, sys.argv[1:], "linear_eval.py"))
