"""``severe report``: the SEVERE table (and a figure) from the results.json files of finished runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from severe.errors import SevereError
from severe.experiments import EXPERIMENTS, RECOGNITION_METRICS, SEVERE_COLUMNS
from severe.io import atomic_write_text
from severe.report.reference import REFERENCE_SETS
from severe.report.table import VIEWS, build_report

FORMATS = {"md": "to_markdown", "csv": "to_csv", "latex": "to_latex"}
_SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".csv": "csv", ".tex": "latex"}

_PAIRS = " | ".join(f"{EXPERIMENTS[a].label}, {EXPERIMENTS[b].label}" for a, b in zip(*[iter(SEVERE_COLUMNS)] * 2))
EPILOG = f"""columns: 'severe' = the 8 SEVERE-benchmark columns, two per factor:
  {_PAIRS}
with the SEVERE mean (UCF-RC entering as 100*(1-error)); 'all' = every experiment found, grouped by factor.
Each column shows the metric the SEVERE table shows for it (FineGym granularity: mean per-class accuracy; other
recognition columns: top-1 video accuracy), read from each results.json's metrics; --metric top1|mean_class
shows one of them in every recognition column. Several seeds of one cell are averaged (mean ± std, n). Mean rank: per column among the rows shown, 1 = best,
ties averaged.

A results.json that cannot be read (or is no severe record) is skipped with its reason on stderr; the rest is
reported. A cell marked † comes from a run that deviates from the protocol (command-line overrides such as
another epoch count, entries left out by DATA.ALLOW_MISSING, undecodable test videos): the notes say how.

--reference adds the published SEVERE++ numbers (arXiv 2504.05706, Tables 3-10) as '<method> (published)' rows
next to yours (the CNN rows for CNN results, the ViT-B rows for ViT results, both for both); ranks are then
computed over all rows shown. A table with a ViT row gets a Family column (CNN / ViT).

examples:
  severe report runs/
  severe report runs/ --reference --plot severe.png
  severe report runs/ other_runs/ --columns all --format latex --out table.tex"""


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Print the SEVERE table of every results.json under the given directories.")
    p.add_argument("dirs", metavar="DIR", nargs="+", help="directories searched recursively for results.json")
    p.add_argument("--format", choices=sorted(FORMATS), help="table format (default: from --out's suffix, else md)")
    p.add_argument("--columns", choices=VIEWS, default="severe", help="severe (default) or all")
    p.add_argument("--reference", action="store_true",
                   help="add the published reference rows of the backbone families found (CNN, ViT or both)")
    p.add_argument("--reference-set", choices=sorted(REFERENCE_SETS),
                   help="which published rows to add (implies --reference): cnn (R(2+1)D-18), "
                        "vit (ViT-B video-only and video-text), all")
    p.add_argument("--metric", choices=sorted(RECOGNITION_METRICS),
                   help="show this recognition metric in every recognition column (default: each column's metric in "
                        "the SEVERE table: mean per-class accuracy for the FineGym granularity columns, top-1 "
                        "otherwise); the footnote names the metric of each column")
    p.add_argument("--plot", metavar="FILE", help="also write a figure (.png, .pdf or .svg)")
    p.add_argument("--out", metavar="FILE", help="write the table to FILE (atomically) instead of printing it")
    return p


def main(argv: list[str] | None = None, prog: str = "severe report") -> int:
    args = _parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise SevereError(f"--plot {args.plot}: use a .png, .pdf or .svg file name")
    fmt = args.format or (_SUFFIX_FORMATS.get(Path(args.out).suffix.lower(), "md") if args.out else "md")
    reference = args.reference_set or bool(args.reference)  # True: the published rows of the families found
    from severe.report.collect import readable_results

    readable, skipped = readable_results(args.dirs)
    for path, reason in skipped:
        print(f"{prog}: skipped {reason if reason.startswith(str(path)) else f'{path}: {reason}'}", file=sys.stderr)
    if not readable:
        raise SevereError(f"no readable results.json under {', '.join(args.dirs)} ({len(skipped)} skipped, see above)")
    report = build_report(readable, reference=reference, columns=args.columns, metric=args.metric)
    text = getattr(report, FORMATS[fmt])()
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    if args.plot:
        from severe.report.plots import plot_report

        plot_report(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
