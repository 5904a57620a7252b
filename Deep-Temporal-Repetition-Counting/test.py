"""Re-test a trained UCF-RC run directory (its config, init.json and last-epoch checkpoint).

    python test.py runs/ucfrep/gdt/seed1
"""
import sys

from severe.cli import run_entry
from severe.repetition.cli import test_main

if __name__ == "__main__":
    sys.exit(run_entry(test_main, sys.argv[1:], "test.py"))
