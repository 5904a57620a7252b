"""``severe convert``: published checkpoint -> exact backbone weights (R(2+1)D-18, R3D-18, I3D ...), or
``--detect`` its method."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from severe.checkpoints.convert import convert_file, detect_file, save_converted
from severe.checkpoints.methods import METHODS
from severe.errors import SevereError

PRETRAINING_DATA = sorted({d for m in METHODS.values() for d in m.pretraining_data})

EPILOG = "methods (file expected under checkpoints_pretraining/; architecture):\n" + "\n".join(
    f"  {m.name:<21} {path}  ({m.arch})" for m in METHODS.values() for path in (m.expected_file, *m.extra_files)
) + """

examples:
  severe convert --method tclr checkpoints_pretraining/tclr/rpd18kin400.pth tclr.pth --trust
  severe convert --detect checkpoints_pretraining/gdt/gdt_K400.pth --trust
  severe convert --all checkpoints_pretraining checkpoints_pretraining/converted --trust

--pretraining-data: the Tubelet-Contrast release holds a Kinetics-400 and a mini-Kinetics R(2+1)D-18 file in
one layout; the folder name in the path (kinetics-400/ or mini-kinetics/) is recorded as meta.pretraining_data.
Pass the option for a file moved out of that layout (default: kinetics-400).

--trust: GDT and TCLR files hold pickled Python objects (argparse args, a GradScaler), as do the ViT
training files of the VideoMAE family, SVT and UMT (args, a config object); they are read with weights-only
unpickling unless you pass --trust for files you trust. ViT rows (docs/checkpoints.md §4) also read
.safetensors files and, for videomae, supervised_vit and svt, Hugging Face transformers names."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="severe convert",
        description="Convert a pretraining checkpoint into backbone weights of its architecture (R(2+1)D-18, R3D-18, I3D or a ViT): selects the "
                    "backbone by prefix, renames to the registered backbone's keys, verifies every key and shape, "
                    "and writes "
                    "{'state_dict', 'meta'} (loadable with torch.load(weights_only=True)).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--method", choices=list(METHODS), metavar="METHOD", help="the method that produced INPUT (see below)")
    mode.add_argument("--detect", action="store_true", help="print the detected method of INPUT (first line) and exit")
    mode.add_argument("--all", action="store_true", help="convert every expected file present under INPUT (a checkpoints_pretraining folder) into OUTPUT/<method>.pth")
    p.add_argument("input", metavar="INPUT", help="checkpoint file (or, with --all, the checkpoints folder)")
    p.add_argument("output", metavar="OUTPUT", nargs="?", help="converted file to write (or, with --all, the output folder)")
    p.add_argument("--trust", action="store_true", help="allow unpickling Python objects stored in the file (only for files you trust)")
    p.add_argument("--pretraining-data", choices=PRETRAINING_DATA, default=None,
                   help="with --method: the pretraining dataset to record when the path does not name it (see below)")
    return p


def _describe(converted, output: Path) -> str:
    meta = converted.meta
    groups = [f"{k} ({n})" for k, n in sorted(converted.dropped.items())]
    dropped = ", ".join(groups[:10]) + (f", ... {len(groups) - 10} more groups" if len(groups) > 10 else "") or "nothing"
    norm = "none" if meta["normalize"] is None else f"mean {meta['normalize']['mean']} std {meta['normalize']['std']}"
    data = f", pretrained on {meta['pretraining_data']}" if meta.get("pretraining_data") else ""
    text = (f"wrote {output}: method {meta['method']}, arch {meta['arch']}{data}, {len(converted.state_dict)} tensors, "
            f"input {meta['channel_order']} / normalisation {norm}\n  left out of the source: {dropped}")
    if "pooled" in meta:  # ViT rows: what backbone(x) returns and what the file could not provide
        fresh = ", ".join(f"{k} ({how})" for k, how in meta["fresh"].items()) or "nothing"
        text += f"\n  pooled feature: {meta['pooled']}\n  initialised fresh: {fresh}"
    return text


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pretraining_data and not args.method:
        parser.error("--pretraining-data goes with --method")
    if args.detect:
        if args.output:
            parser.error("--detect takes only INPUT")
        method = detect_file(args.input, trust=args.trust)
        if method is None:
            raise SevereError(f"{args.input}: the layout matches no known method ({', '.join(METHODS)})")
        print(method)
        return 0
    if not args.output:
        parser.error("OUTPUT is required")
    from severe.io import check_writable

    if args.all:
        check_writable(args.output)
        return _convert_all(Path(args.input), Path(args.output), args.trust)
    check_writable(Path(args.output).parent)  # a read-only or full output location fails before converting
    converted = convert_file(args.input, args.method, trust=args.trust, pretraining=args.pretraining_data)
    save_converted(converted, args.output)
    print(_describe(converted, Path(args.output)))
    return 0


def expected_files() -> list[tuple[str, str, str]]:
    """(method, file under checkpoints_pretraining/, converted file name without .pth) of every known release."""
    return [(m.name, path, stem) for m in METHODS.values()
            for path, stem in ((m.expected_file, m.name), *m.extra_files.items())]


def _convert_all(root: Path, out_dir: Path, trust: bool) -> int:
    if not root.is_dir():
        raise SevereError(f"checkpoints folder not found: {root}")
    failures = 0
    files = expected_files()
    if not any((root / path).is_file() for _, path, _ in files):
        raise SevereError(f"none of the expected files is under {root} (see checkpoints_pretraining/README.md)")
    width = max(len(stem) for _, _, stem in files)
    for method, path, stem in files:
        src = root / path
        if not src.is_file():
            print(f"{stem:<{width}} not present ({src})")
            continue
        try:
            converted = convert_file(src, method, trust=trust)
            save_converted(converted, out_dir / f"{stem}.pth")
            print(f"{stem:<{width}} ok -> {out_dir / f'{stem}.pth'}")
        except SevereError as e:
            failures += 1
            print(f"{stem:<{width}} FAILED: {e}", file=sys.stderr)
    return 1 if failures else 0
