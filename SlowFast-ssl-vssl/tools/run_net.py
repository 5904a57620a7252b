"""Train and/or test an AVA or Charades experiment from a PySlowFast-style config.

    python tools/run_net.py --cfg configs/AVA/R2PLUS1D_18_32x2_112.yaml MODEL.INIT_METHOD gdt \
        MODEL.CKPT ../checkpoints_pretraining/gdt/gdt_K400.pth --trust

The config's TRAIN.DATASET (ava or charades) picks the task; see ../README.md.

Add --print-config to print the resolved config (per-method rules as comments) and exit without running.
"""
import sys

from severe.cli import run_entry
from severe.tasks.slowfast import run_net_main

if __name__ == "__main__":
    sys.exit(run_entry(run_net_main, sys.argv[1:], "run_net.py"))
