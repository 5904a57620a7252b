"""The ``severe`` command: a thin dispatcher to one module per sub-command.

Each sub-command lives in its own module exposing ``main(argv: list[str]) -> int``; it is imported
only when used, so ``severe --help`` stays fast. User errors (:class:`SevereError`) and writes refused by
the output location (read-only, no space left, permission, not a folder) print one line on stderr and exit
with status 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable

from severe.errors import SevereError

# name -> (module, one-line help). One table, no if-chain.
COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("severe.checkpoints.cli", "convert a published pretraining checkpoint into R(2+1)D-18 weights, or --detect its method"),
    "data": ("severe.data.cli", "inspect datasets under the data root (summary) and measure loading speed (bench)"),
    "synth": ("severe.synth.cli", "write small synthetic datasets in every official layout (for tests and the demo)"),
    "demo": ("severe.demo", "run a miniature SEVERE suite on synthetic data in minutes and write the report (start here)"),
    "benchmark": ("severe.benchmark.cli", "run a suite of experiments (severe, domains, samples, granularity, tasks, full) locally or on SLURM"),
    "report": ("severe.report.cli", "collect results.json files into the SEVERE table (md/csv/latex), with references and plots"),
    "eval": ("severe.eval_cli", "evaluate detections offline with the reference semantics (ava)"),
    "run": ("severe.run_cli", "run one experiment: recognition, linear, test, ava, charades, repetition"),
}


LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"
LOG_DATEFMT = "%H:%M:%S"


def setup_logging() -> None:
    """INFO-level logs with time and logger name on stderr (every entry point that runs work calls this)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATEFMT)


def experiment_parser(prog: str, description: str, epilog: str, *, config_help: str,
                      data_root_help: str = "data root (default: $SEVERE_DATA)",
                      init_required: bool = True) -> argparse.ArgumentParser:
    """The options every ``CONFIG --init METHOD [--weights PATH] ... [KEY VALUE ...]`` entry point shares
    (every ``severe run TASK``; ``--cfg FILE`` is accepted in place of CONFIG)."""
    from severe.checkpoints.methods import METHODS

    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", nargs="?", help=config_help)
    p.add_argument("overrides", metavar="KEY VALUE", nargs="*", help="config overrides")
    p.add_argument("--cfg", metavar="FILE", help="the config, PySlowFast's spelling (instead of CONFIG)")
    p.add_argument("--init", required=init_required, metavar="METHOD",
                   help=f"initialisation: scratch, or the method of --weights ({', '.join(METHODS)})")
    p.add_argument("--weights", metavar="PATH", help="converted weights (severe convert) or the published checkpoint")
    p.add_argument("--data-root", metavar="DIR", help=data_root_help)
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/<experiment>/<method>/seed<SEED>)")
    p.add_argument("--resume", action="store_true", help="continue an unfinished run in --out exactly where it stopped")
    p.add_argument("--trust", action="store_true", help="allow unpickling Python objects in a raw checkpoint you trust")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="severe",
        description="SEVERE benchmark: evaluate how well a pretrained video model generalises.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<10} {h}" for n, (_, h) in COMMANDS.items())
        + "\n\nRun 'severe COMMAND --help' for the options of one command.",
    )
    p.add_argument("command", metavar="COMMAND", choices=sorted(COMMANDS), help="one of: " + ", ".join(COMMANDS))
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    ns = parser.parse_args(argv[:1])
    module = importlib.import_module(COMMANDS[ns.command][0])
    return run_entry(lambda args, prog: module.main(args), argv[1:], f"severe {ns.command}")


def run_entry(entry: Callable[..., int | None], argv: list[str], prog: str) -> int:
    """Call ``entry(argv, prog=prog)``; a SevereError becomes one line on stderr and exit status 2."""
    try:
        return int(entry(argv, prog=prog) or 0)
    except SevereError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as e:  # a write refused by the output location, outside severe.io
        line = _write_failure(e)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return 2


def _write_failure(e: BaseException) -> str | None:
    """One line for an OSError of the output location (read-only, no space, permission, not a folder) or
    torch's opaque file-writer error; None for anything else (a bug: keep its traceback)."""
    from severe.io import write_cause

    cause = write_cause(e)
    if cause is not None:
        where = getattr(e, "filename", None)
        return f"{where}: {cause}" if where else cause
    if isinstance(e, RuntimeError) and "inline_container" in str(e):
        return f"cannot write a file: the file writer failed ({str(e).strip().splitlines()[0][:160]})"
    return None


if __name__ == "__main__":
    sys.exit(main())
