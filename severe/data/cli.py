"""``severe data``: inspect a dataset under the data root (summary) and measure loading speed (bench)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from severe.data.manifest import split_manifest
from severe.data.registry import DATASET_IDS, ENV_DATA_ROOT, SPLITS, dataset_dir, get_dataset, resolve_data_root
from severe.errors import SevereError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET", help="dataset id: " + ", ".join(DATASET_IDS))
    p.add_argument("--root", metavar="DIR", default=None,
                   help=f"data root holding one folder per dataset (default: ${ENV_DATA_ROOT})")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws (default: 0)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="severe data", description="Inspect datasets under the data root.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("summary", help="entries / present / missing / manifest hash of the train and test splits",
                       description="Read the official annotation files of DATASET and report, per split, the "
                                   "number of entries, how many have their media on disk, how many are missing, "
                                   "and the manifest SHA-256 (docs/datasets.md §1.3). Works with no media present.")
    _add_common(s)
    s.add_argument("--num-examples", type=int, default=None, metavar="N",
                   help="describe the N-example training subset (k = ceil(N / classes) per class, drawn with --seed)")
    b = sub.add_parser("bench", help="measure clip loading speed (decode + sample + transform)",
                       description="Load random training clips of DATASET with the real loader and report clips/s.")
    _add_common(b)
    b.add_argument("--clips", type=int, default=64, metavar="N", help="number of clips to load (default: 64)")
    b.add_argument("--workers", type=int, default=0, metavar="W", help="loader worker processes (default: 0)")
    return p


def _summary(ns: argparse.Namespace) -> int:
    spec = get_dataset(ns.dataset)
    root = resolve_data_root(ns.root)
    splits = {s: split_manifest(spec.id, root, s, num_examples=ns.num_examples, seed=ns.seed) for s in SPLITS}
    result = {"dataset": spec.id, "num_classes": spec.num_classes, "title": spec.title, "folder": spec.folder,
              "media": spec.media, "root": str(root), "test_split": spec.test_split,
              "num_examples": ns.num_examples, "seed": ns.seed, "splits": splits}
    if ns.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{spec.title} ({spec.id}) in {dataset_dir(root, spec.id)}")
    print(f"classes: {spec.num_classes if spec.num_classes is not None else '-'}   media: {spec.media}   "
          f"test split: {spec.test_split}")
    if ns.num_examples is not None:
        print(f"train split = {ns.num_examples}-example subset (seed {ns.seed})")
    print(f"{'split':<6} {'entries':>9} {'present':>9} {'missing':>9}  sha256")
    for name, m in splits.items():
        print(f"{name:<6} {m['entries']:>9} {m['present']:>9} {m['missing']:>9}  {m['sha256']}")
    for name, m in splits.items():
        if m["missing"]:
            print(f"{name}: first missing: {', '.join(m['missing_examples'])}")
    return 0


def _bench(ns: argparse.Namespace) -> int:
    from severe.data.bench import run_bench  # lazy: pulls in decoding and torch

    spec = get_dataset(ns.dataset)
    root = resolve_data_root(ns.root)
    if ns.clips <= 0 or ns.workers < 0:
        raise SevereError(f"--clips must be positive and --workers >= 0 (got {ns.clips}, {ns.workers})")
    result = run_bench(spec.id, Path(root), clips=ns.clips, workers=ns.workers, seed=ns.seed)
    if ns.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{spec.title} ({spec.id}): {result['clips_per_s']:.2f} clips/s")
    for k, v in result.items():
        if k != "clips_per_s":
            print(f"  {k}: {v}")
    return 0


ACTIONS = {"summary": _summary, "bench": _bench}


def main(argv: list[str]) -> int:
    """Entry point of ``severe data``."""
    ns = _parser().parse_args(argv)
    return ACTIONS[ns.action](ns)
