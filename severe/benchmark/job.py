"""``python -m severe.benchmark.job MODULE:FUNCTION ARGS...``: run one experiment entry point (the command
``severe benchmark --dry-run`` prints for each job)."""

import sys

from severe.benchmark.launch import run_job

if __name__ == "__main__":
    module, _, function = sys.argv[1].partition(":")
    sys.exit(run_job(module, function, sys.argv[2:]))
