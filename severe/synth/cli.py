"""``severe synth``: write small synthetic datasets in every official layout (tests and the demo)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from severe.data.registry import DATASET_IDS
from severe.synth.datasets import SIZES, write_synthetic_root


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="severe synth",
        description="Write synthetic versions of every SEVERE dataset under OUT, in the official folder "
                    "layouts and annotation formats, with small learnable videos (class = motion). "
                    "Deterministic: the same --size and --seed give the same bytes.")
    p.add_argument("--out", required=True, metavar="ROOT", help="data root to create (dataset folders must be empty)")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny",
                   help="tiny: seconds, for tests; small: larger frames and more videos, for the demo (default: tiny)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument("--datasets", default=None, metavar="A,B,...",
                   help="comma-separated dataset ids to write (default: all): " + ", ".join(DATASET_IDS))
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str]) -> int:
    """Entry point of ``severe synth``."""
    ns = _parser().parse_args(argv)
    datasets = [d.strip() for d in ns.datasets.split(",") if d.strip()] if ns.datasets else None
    from severe.io import check_writable

    check_writable(ns.out)  # one line (read-only, no space, not a folder) before any video is encoded
    summary = write_synthetic_root(Path(ns.out), size=ns.size, seed=ns.seed, datasets=datasets)
    if ns.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"synthetic data root {summary['out']} (size {ns.size}, seed {ns.seed}, {summary['seconds']:.1f} s)")
    for folder, s in summary["folders"].items():
        media = f"{s['videos']} videos" if s["videos"] else f"{s['frame_folders']} frame folders ({s['images']} JPEGs)"
        print(f"  {folder:<18} {media:<36} datasets: {', '.join(s['datasets'])}")
    print(f"use it with --data-root {summary['out']} (or SEVERE_DATA={summary['out']})")
    return 0
