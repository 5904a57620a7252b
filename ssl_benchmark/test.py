"""Test a trained run directory with the dense 10-clip protocol.

    python test.py runs/ucf101/gdt/seed100
"""
import sys

from severe.cli import run_entry
from severe.recognition.cli import test_main

if __name__ == "__main__":
    sys.exit(run_entry(test_main, sys.argv[1:], "test.py"))
