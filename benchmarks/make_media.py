"""Regenerate the README's figures in ``media/`` (the one command for them):

    python benchmarks/make_media.py            # both figures
    python benchmarks/make_media.py --only demo

* ``media/demo_report.png``: ``severe demo`` run into a temporary folder (deleted afterwards), its report plot
  copied;
* ``media/loading_speed.png``: ``python benchmarks/bench_data_loading.py --plot media/loading_speed.png``.

Each figure is written only when its command succeeds; a failing command stops with its exit status.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEDIA = REPO / "media"
BENCH_LOADING = REPO / "benchmarks" / "bench_data_loading.py"


def demo_figure(target: Path) -> None:
    """Run the demo into a temporary folder and copy its report plot to ``target``."""
    with tempfile.TemporaryDirectory(prefix="severe_demo_") as tmp:
        out = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-c", "import sys; from severe.cli import main; sys.exit(main(sys.argv[1:]))",
                        "demo", "--out", str(out)], check=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "report.png", target)
    print(f"wrote {target}")


def loading_figure(target: Path) -> None:
    """``bench_data_loading.py --plot target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(BENCH_LOADING), "--plot", str(target)], check=True)
    print(f"wrote {target}")


FIGURES = {"demo": "demo_report.png", "loading": "loading_speed.png"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(FIGURES), help="regenerate one figure (default: all)")
    args = p.parse_args(argv)
    try:
        if args.only in (None, "demo"):
            demo_figure(MEDIA / FIGURES["demo"])
        if args.only in (None, "loading"):
            loading_figure(MEDIA / FIGURES["loading"])
    except subprocess.CalledProcessError as e:
        return e.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
