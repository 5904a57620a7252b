"""The one command form of every ``severe run TASK`` (and the subprojects' scripts):

    CONFIG --init METHOD [--weights PATH] [--data-root DIR] [--out DIR] [--resume] [--trust] [--no-progress]
           [--print-config] [KEY VALUE ...]

``--cfg FILE`` is accepted in place of CONFIG (PySlowFast's spelling); tasks with aliases also take the
initialisation, data root and output directory as PySlowFast keys (MODEL.INIT_METHOD ...). A task whose
config says not to train (AVA/Charades ``TRAIN.ENABLE False``) tests the trained run in ``--out``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from severe.cli import setup_logging
from severe.config import check_user_overrides
from severe.errors import SevereError
from severe.tasks import lifecycle
from severe.tasks.base import Task
from severe.tasks.schema import FLAGS, flag_overrides


def _epilog(task: Task) -> str:
    where = f"a path, or a name under {task.config_dir}" if task.config_dir else "a path"
    alias = ("\nPySlowFast key names (MODEL.INIT_METHOD, MODEL.CKPT, DATA.PATH_TO_DATA_DIR, OUTPUT_DIR, RNG_SEED, "
             "SOLVER.MAX_EPOCH, DATA_LOADER.NUM_WORKERS ...) are accepted for their common names.") if task.aliases else ""
    return (f"CONFIG: {where}.\n\nKEY VALUE overrides (after the config) change any config key, e.g. TRAIN.EPOCHS 2 "
            f"DATA.NUM_WORKERS 0 SEED 1.{alias}\nMulti-GPU: torchrun --nproc_per_node N ... (TRAIN.BATCH_SIZE stays the "
            f"global batch).")


def parse(task: Task, argv: Sequence[str], prog: str, description: str | None = None) -> argparse.Namespace:
    from severe.cli import experiment_parser

    p = experiment_parser(prog, description or task.description, _epilog(task),
                          config_help="experiment config" + (f" (path or name under {task.config_dir})" if task.config_dir else ""),
                          init_required=not task.aliases)
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (defaults <- file <- per-method rules <- KEY VALUE) as YAML, the "
                        "applied rules as comments, and exit: no data read, no directory created")
    args = p.parse_intermixed_args(list(argv))
    if args.cfg is not None and args.config is not None:  # --cfg FILE KEY VALUE ...: the first KEY is no CONFIG
        args.overrides = [args.config, *args.overrides]
        args.config = None
    args.config = args.config if args.config is not None else args.cfg
    if args.config is None:
        p.error("the config is required (CONFIG or --cfg FILE)")
    check_user_overrides(args.overrides, task.aliases)  # the user's own arguments, before the options join them
    keys = {(task.aliases or {}).get(k, k) for k in args.overrides[::2]}
    for name, key in FLAGS.items():
        if getattr(args, name, None) is not None and key in keys:
            raise SevereError(f"command line: {key} is given twice (--{name.replace('_', '-')} and as KEY VALUE); keep one")
    return args


def check_user_milestones(task: Task, cfg, user_overrides: Sequence[str]) -> None:
    """Milestones the user gives (``TRAIN.MILESTONES`` on the command line) must lie within the resolved
    TRAIN.EPOCHS: one past the end would never apply. Milestones that come with the config or a per-method rule
    may lie past a shortened TRAIN.EPOCHS (a short trial run of a recipe; the report marks it as a deviation)."""
    given = [k for k in user_overrides[::2] if (task.aliases or {}).get(k, k) == "TRAIN.MILESTONES"]
    train = cfg.get("TRAIN")
    if not given or train is None or "EPOCHS" not in train:
        return
    past = [m for m in train.MILESTONES if m > train.EPOCHS]
    if past:
        raise SevereError(f"{given[0]} {list(train.MILESTONES)}: milestone {past[0]} lies past TRAIN.EPOCHS "
                          f"{train.EPOCHS} and would never apply; give milestones within the epochs (or [] for none)")


def execute(task: Task, args: argparse.Namespace, force: Sequence[str] = ()) -> tuple[dict | None, Path]:
    """Plan and run (or, when the config says so, re-test) one experiment from parsed arguments; returns the
    results record (None when only training) and the run directory."""
    setup_logging()
    overrides = [*args.overrides, *flag_overrides(init=args.init, weights=args.weights, data_root=args.data_root,
                                                  out=args.out)]
    cfg = lifecycle.load_task_config(task, args.config, [*force, *overrides])
    if getattr(args, "print_config", False):
        print_config(task, args, cfg, overrides, force)
        return None, None
    if not task.trains(cfg):
        run_dir = lifecycle.trained_run_dir(cfg)
        return lifecycle.retest(task, run_dir, progress=not args.no_progress, cfg=cfg), run_dir
    plan = lifecycle.plan(task, args.config, overrides, trust=args.trust, force=force)
    check_user_milestones(task, plan.cfg, args.overrides)
    data_root = lifecycle.data_root_of(plan.cfg)
    record = lifecycle.run(plan, data_root, plan.run_dir(), resume=args.resume, progress=not args.no_progress)
    return record, plan.run_dir()


def print_config(task: Task, args: argparse.Namespace, cfg, overrides: Sequence[str], force: Sequence[str] = ()) -> None:
    """``--print-config``: the config this command would run (a test-only config: as given; otherwise the plan's,
    per-method rules included) on stdout; reads no data and no weights, creates nothing."""
    path = task.find_config(args.config)
    header = [f"{task.resolve(cfg).name}: {path}"]
    if not task.trains(cfg):
        header.append(f"test-only: tests the trained run in {lifecycle.trained_run_dir(cfg)}")
        print(lifecycle.config_text(cfg, header=header), end="")
        return
    plan = lifecycle.plan(task, args.config, overrides, trust=args.trust, force=force, load=False)
    check_user_milestones(task, plan.cfg, args.overrides)
    header.append(f"initialisation: {plan.method}")
    print(lifecycle.config_text(plan.cfg, plan.rules, overrides, header), end="")


def _trained_config_text(task: Task, run_dir: Path) -> str:
    """A trained run directory's config as its test would use it, with the rules its init.json lists."""
    from types import SimpleNamespace

    from severe.config import load_config
    from severe.errors import SevereError

    for name in (lifecycle.CONFIG_FILE, lifecycle.INIT_FILE):
        if not (run_dir / name).is_file():
            raise SevereError(f"{run_dir} is not a {task.name} run directory: {name} is missing")
    cfg = load_config(task.defaults(), run_dir / lifecycle.CONFIG_FILE, aliases=task.aliases)
    meta = json.loads((run_dir / lifecycle.INIT_FILE).read_text(encoding="utf-8"))
    rules = [SimpleNamespace(method=meta.get("method", "?"), why=r.get("why", ""), settings=r.get("settings", {}))
             for r in meta.get("rules", [])]
    return lifecycle.config_text(cfg, rules, header=[f"{task.name}: {run_dir / lifecycle.CONFIG_FILE}",
                                                     f"initialisation: {meta.get('method', '?')}"])


def print_summary(task: Task, record: dict | None, run_dir: Path | str) -> None:
    if record is not None:
        print(json.dumps({"run_dir": str(run_dir), "task": record["task"], "experiment_id": record["experiment_id"],
                          "init": record["init_method"], "seed": record["seed"], **_primary(record),
                          **task.summary(record)}))


def _primary(record: dict) -> dict:
    return {record["primary"]["metric"]: record["primary"]["value"]}


def run_main(task: Task, argv: Sequence[str], prog: str, description: str | None = None,
             force: Sequence[str] = ()) -> int:
    args = parse(task, argv, prog, description)
    record, run_dir = execute(task, args, force)
    print_summary(task, record, run_dir)
    return 0


def retest_main(task: Task, argv: Sequence[str], prog: str, description: str) -> int:
    """``RUN_DIR [--data-root DIR] [--no-progress] [KEY VALUE ...]``: test a trained run directory; the
    overrides may change test settings only (lifecycle.retest_keys, e.g. DATA.ALLOW_TEST_FAILURES True)."""
    from severe.config import load_config, merge_overrides

    free = lifecycle.retest_keys(task)
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=(
        "KEY VALUE overrides may change only test-time settings: "
        + ", ".join(k + ("*" if k.endswith(".") else "") for k in free)
        + " (e.g. DATA.ALLOW_TEST_FAILURES True). The data root: --data-root, else the one the run recorded, "
          "else $SEVERE_DATA."))
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("overrides", metavar="KEY VALUE", nargs="*", help="test-time config overrides")
    p.add_argument("--data-root", metavar="DIR", help="data root (default: the run's, else $SEVERE_DATA)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--print-config", action="store_true",
                   help="print the run's config (config.yaml, its per-method rules from init.json as comments) and exit")
    args = p.parse_intermixed_args(list(argv))
    check_user_overrides(args.overrides, task.aliases)
    if args.print_config:
        print(_trained_config_text(task, Path(args.run_dir)), end="")
        return 0
    cfg = None
    if args.overrides:
        for key in args.overrides[::2]:
            internal = (task.aliases or {}).get(key, key)
            if not internal.startswith(free):
                raise SevereError(f"{key} is a training setting: a re-test may change only test-time settings "
                                  f"({', '.join(k + ('*' if k.endswith('.') else '') for k in free)})")
        config_file = Path(args.run_dir) / lifecycle.CONFIG_FILE
        if not config_file.is_file():
            raise SevereError(f"{args.run_dir} is not a trained {task.name} run directory: "
                              f"{lifecycle.CONFIG_FILE} is missing")
        cfg = load_config(task.defaults(), config_file, aliases=task.aliases)
        cfg.defrost()
        merge_overrides(cfg, args.overrides, task.aliases)
        cfg.freeze()
    setup_logging()
    record = lifecycle.retest(task, Path(args.run_dir), args.data_root, progress=not args.no_progress, cfg=cfg)
    print_summary(task, record, args.run_dir)
    return 0
