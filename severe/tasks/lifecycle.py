"""The one run lifecycle of every task: plan -> run directory -> config.yaml / init.json (written once,
checked on resume) -> train -> test -> results.json, resume, and re-test of a trained run directory.

Run directory (``--out``, default ``runs/<EXPERIMENT.ID>/<method>/seed<SEED>``):
  config.yaml     the resolved config (defaults <- file <- init exceptions <- command line), written once
  init.json       the initial weights' metadata (method, arch, input convention, source sha256, rules)
  data_root.txt   the data root the run used (``run test RUN_DIR`` reads it; an explicit --data-root wins)
  metrics.jsonl, train.log, checkpoint_last.pt   written by the trainer
  results.json    the final record (severe.results); retest.json for a later re-test
  plus the task's own files (subset lists, predictions, detections)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml
from fvcore.common.config import CfgNode
from torch import nn

from severe.checkpoints.convert import Converted
from severe.checkpoints.weights import SCRATCH_META, build_initialised_backbone, check_initialisation, load_weights
from severe.config import load_config, to_plain
from severe.data.registry import resolve_data_root
from severe.engine.trainer import LAST_CHECKPOINT
from severe.errors import SevereError
from severe.io import atomic_write_json, atomic_write_text, check_writable, remove_stale_temps
from severe.models import ARCHITECTURES, build_backbone
from severe.recognition.config import flatten_settings
from severe.results import RESULTS_FILE, make_results, prepare_run_dir, results_target
from severe.tasks.base import Job, Task
from severe.tasks.schema import LOCATION_KEYS, SLOWFAST_ALIASES, TEST_TIME_KEYS, check_ranges

log = logging.getLogger("severe.tasks")

CONFIG_FILE, INIT_FILE, DATA_ROOT_FILE = "config.yaml", "init.json", "data_root.txt"


# ------------------------------------------------------------------------------------------- backbone

def make_backbone(arch: str, weights: Converted | None = None) -> nn.Module:
    """The one place every task builds its backbone: ``weights`` loaded strictly into their own
    architecture, or a fresh ``arch`` (scratch; seed first)."""
    return build_backbone(arch or None, weights)


def check_arch(arch: str, weights: Converted | None) -> None:
    """MODEL.ARCH must be registered, and agree with the weights' architecture when there are weights."""
    if not arch:
        return
    if arch not in ARCHITECTURES:
        raise SevereError(f"MODEL.ARCH '{arch}' is not a registered architecture; known: {', '.join(ARCHITECTURES)}")
    if weights is not None and weights.meta["arch"] != arch:
        raise SevereError(f"MODEL.ARCH '{arch}' differs from the architecture of the '{weights.meta.get('method')}' "
                          f"weights ({weights.meta['arch']}); drop MODEL.ARCH or use --init scratch")


# ------------------------------------------------------------------------------------------- plan

def load_task_config(task: Task, config: str | Path, overrides: Sequence[str] = ()) -> CfgNode:
    """defaults of ``task`` <- file <- ``KEY VALUE`` overrides (aliases renamed), checked and validated."""
    path = task.find_config(config)
    task.check_file(path, list(overrides))
    cfg = load_config(task.defaults(), path, list(overrides), task.aliases)
    check_ranges(cfg, task.aliases)
    task.resolve(cfg).validate(cfg)
    return cfg


@dataclass
class Plan:
    """Everything a run needs, resolved before any data is touched."""

    task: Task
    cfg: CfgNode
    method: str
    weights: Converted | None
    rules: list = field(default_factory=list)

    @property
    def meta(self) -> dict:
        """init.json: the weights' metadata (scratch: torchvision's R(2+1)D-18 convention), MODEL.ARCH and
        the protocol exceptions applied."""
        meta = dict(self.weights.meta) if self.weights is not None else dict(SCRATCH_META)
        if self.cfg.MODEL.ARCH:
            meta["arch"] = self.cfg.MODEL.ARCH  # scratch (checked against the weights otherwise)
        meta["rules"] = [{"why": r.why, "settings": r.settings} for r in self.rules]
        return meta

    def run_dir(self) -> Path:
        return default_run_dir(self.cfg, self.method)


def default_run_dir(cfg: CfgNode, method: str) -> Path:
    """RUN.OUT_DIR, or ``runs/<EXPERIMENT.ID>/<method>/seed<SEED>``."""
    return Path(cfg.RUN.OUT_DIR) if cfg.RUN.OUT_DIR else Path("runs") / cfg.EXPERIMENT.ID / method / f"seed{cfg.SEED}"


def _names(task: Task, overrides: Sequence[str]) -> tuple[str, str]:
    """How the user named the initialisation (for messages): the options, or PySlowFast's keys when the
    task accepts them and --init was not given."""
    if task.aliases and "RUN.INIT" not in overrides[::2]:
        inverse = {v: k for k, v in SLOWFAST_ALIASES.items()}
        return inverse["RUN.INIT"], inverse["RUN.WEIGHTS"]
    return "--init", "--weights"


def plan(task: Task, config: str | Path, overrides: Sequence[str] = (), trust: bool = False,
         force: Sequence[str] = (), load: bool = True) -> Plan:
    """Resolve the config (defaults <- file <- ``force`` <- the init's exceptions <- overrides) and the weights.

    ``overrides`` include the command-line options as base keys (RUN.INIT ...; severe.tasks.schema.flag_overrides).
    The exceptions are selected on the config with the overrides applied (the experiment actually run).
    ``load`` False: the weights file is checked to exist but not read (``Plan.weights`` None; --print-config)."""
    path = task.find_config(config)
    first = load_task_config(task, path, [*force, *overrides])
    init_name, weights_name = _names(task, [*force, *overrides])
    if not first.RUN.INIT.strip():
        raise SevereError(f"{init_name} is empty: set it to scratch or a method id (e.g. {init_name} gdt "
                          f"{weights_name} path/to/gdt_K400.pth)")
    method = check_initialisation(first.RUN.INIT, first.RUN.WEIGHTS or None, init_name, weights_name)
    loaded = None if method == "scratch" or not load else load_weights(first.RUN.WEIGHTS, method=method, trust=trust)
    rules = task.init_rules(method, first)  # after the overrides: the rules of the experiment actually run
    cfg = load_task_config(task, path, [*force, *flatten_settings(rules), *overrides]) if rules else first
    check_arch(cfg.MODEL.ARCH, loaded)
    return Plan(task.resolve(cfg), cfg, method, loaded, rules)


def config_text(cfg: CfgNode, rules: Sequence = (), overrides: Sequence[str] = (), header: Sequence[str] = ()) -> str:
    """The resolved config as YAML, preceded by ``header`` lines and the applied per-method ``rules`` (each with its
    settings, and the keys the command line then changed) as YAML comments (``--print-config``)."""
    given = set(overrides[::2])
    lines = [f"# {h}" for h in header]
    lines.append("# per-method rules applied (docs/protocol.md §3): " + ("none" if not rules else str(len(rules))))
    for r in rules:
        settings = ", ".join(f"{k}={v!r}" for k, v in r.settings.items())
        beaten = [k for k in r.settings if k in given]
        lines.append(f"#   {r.method}: {r.why}: {settings}"
                     + (f" (then set on the command line: {', '.join(beaten)})" if beaten else ""))
    return "\n".join(lines) + "\n" + yaml.safe_dump(to_plain(cfg), sort_keys=True)


# ------------------------------------------------------------------------------------------- run directory

def write_or_check_config(run_dir: Path, cfg: CfgNode) -> None:
    """Write ``config.yaml`` once; a resumed run must bring the same config (locations may change)."""
    plain = to_plain(cfg)
    path = Path(run_dir) / CONFIG_FILE
    if path.exists():
        diffs = [k for k in differences(yaml.safe_load(path.read_text(encoding="utf-8")), plain)
                 if not k.startswith(LOCATION_KEYS)]
        if diffs:
            raise SevereError(f"{path} differs from the config of this command (first difference: {diffs[0]}); resume "
                              f"with the same config and overrides, or choose another output directory")
        return
    atomic_write_text(path, yaml.safe_dump(plain, sort_keys=True))


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def data_root_of(cfg: CfgNode, data_root: str | Path | None = None, run_dir: Path | None = None) -> Path:
    """The data root: ``data_root``, else RUN.DATA_ROOT, else the one ``run_dir`` recorded (data_root.txt,
    when it still exists), else $SEVERE_DATA (an existing folder)."""
    given = str(data_root) if data_root else (cfg.RUN.DATA_ROOT or None)
    if given is None and run_dir is not None and (Path(run_dir) / DATA_ROOT_FILE).is_file():
        recorded = Path((Path(run_dir) / DATA_ROOT_FILE).read_text(encoding="utf-8").strip())
        if recorded.is_dir():
            return recorded
    return resolve_data_root(given)


# ------------------------------------------------------------------------------------------- run

def run(plan: Plan, data_root: str | Path | None = None, run_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, stop_after_epoch: int | None = None) -> dict | None:
    """Train and test one experiment; returns the results record (None when only training, when stopped
    early, or on non-main ranks of a task whose metrics only rank 0 computes)."""
    from severe.engine import init_distributed, seed_everything

    task, cfg = plan.task, plan.cfg
    data_root = data_root_of(cfg, data_root)
    run_dir = Path(run_dir) if run_dir is not None else plan.run_dir()
    task.check_data(data_root)
    ctx = init_distributed()
    meta = plan.meta
    if ctx.device.type == "cpu" and task.trains(cfg):
        from severe.engine.memory import check_cpu_training_memory

        check_cpu_training_memory(cfg, meta["arch"], ctx.world_size)
    if ctx.is_main:
        prepare_run_dir(run_dir, resume=resume)
        if resume:
            for stale in remove_stale_temps(run_dir):
                log.info("removed %s (a temp file of a write interrupted earlier)", stale)
        write_or_check_config(run_dir, cfg)
        atomic_write_json(run_dir / INIT_FILE, meta)
        atomic_write_text(run_dir / DATA_ROOT_FILE, f"{Path(data_root).resolve()}\n")
    resume = resume and (run_dir / LAST_CHECKPOINT).exists()  # killed before the first epoch ended: start afresh
    seed_everything(cfg.SEED)
    job = Job(cfg, plan.method, meta, data_root, run_dir, ctx, resume=resume, progress=progress,
              stop_after_epoch=stop_after_epoch)
    data = task.prepare(job)
    model = task.build_model(cfg, meta, plan.weights)
    extra = task.train(job, model, data)
    if extra is None or not task.tests(cfg):
        return None
    metrics, counts = task.evaluate(job, model, data)
    return _finish(task, job, metrics, counts, data, extra, results_file=run_dir / RESULTS_FILE)


def _finish(task: Task, job: Job, metrics: dict, counts: dict, data, extra: dict, results_file: Path) -> dict | None:
    cfg = job.cfg
    if not metrics:  # non-main rank of a task that scores on rank 0 only
        return None
    reported = task.reported_metrics(metrics)
    value = float(reported[task.primary_metric])
    record = make_results(
        **task.identity(cfg), init_method=job.method, metrics=reported, primary_metric=task.primary_metric,
        primary_value=round(100.0 * value, 4) if task.percent else round(value, 6),
        higher_is_better=task.higher_is_better, seed=cfg.SEED, config=to_plain(cfg), data=task.data_record(data, counts),
        deviations=task.deviations(job, data, counts), extra={"init": job.meta, **extra})
    if job.ctx.is_main:
        atomic_write_json(results_file, record)
        log.info("%s %s seed %d: %s %s -> %s", record["experiment_id"], job.method, cfg.SEED, task.primary_metric,
                 record["primary"]["value"], results_file)
    return record


# ------------------------------------------------------------------------------------------- re-test

def load_trained(task: Task, run_dir: Path, cfg: CfgNode | None = None) -> tuple[CfgNode, dict, dict]:
    """(config, init.json, last checkpoint) of a finished run directory; ``cfg`` (a test-only command's config)
    must agree with the trained one except the task's test settings."""
    from severe.engine import load_checkpoint

    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, INIT_FILE, LAST_CHECKPOINT):
        if not (run_dir / name).is_file():
            raise SevereError(f"{run_dir} is not a trained {task.name} run directory: {name} is missing")
    stored = load_config(task.defaults(), run_dir / CONFIG_FILE, aliases=task.aliases)  # older runs: old names
    if cfg is None:
        cfg = stored
    else:
        free = retest_keys(task)
        diffs = [k for k in differences(to_plain(stored), to_plain(cfg)) if not k.startswith(free)]
        if diffs:
            raise SevereError(f"{run_dir / CONFIG_FILE}: {diffs[0]} differs from this config; a test-only run may "
                              f"change only {', '.join(k + ('*' if k.endswith('.') else '') for k in free)}")
    task.check_retest(cfg, run_dir)
    meta = json.loads((run_dir / INIT_FILE).read_text(encoding="utf-8"))
    if cfg.RUN.INIT and cfg.RUN.INIT.strip().lower() != meta.get("method"):
        raise SevereError(f"{run_dir} was trained from '{meta.get('method')}', not '{cfg.RUN.INIT}'")
    ckpt = load_checkpoint(run_dir / LAST_CHECKPOINT)
    if ckpt["epoch"] + 1 != cfg.TRAIN.EPOCHS:
        raise SevereError(f"{run_dir}: training stopped after epoch {ckpt['epoch'] + 1} of {cfg.TRAIN.EPOCHS}; "
                          f"resume it first (same command with --resume)")
    return cfg, meta, ckpt


def retest_keys(task: Task) -> tuple[str, ...]:
    """Keys (or dotted prefixes) a re-test may change: the task's test settings and the test-time data
    switches (DATA.ALLOW_TEST_FAILURES, DATA.ALLOW_MISSING)."""
    return tuple(dict.fromkeys((*task.test_free_keys, *TEST_TIME_KEYS)))


def retest(task: Task, run_dir: str | Path, data_root: str | Path | None = None, progress: bool = True,
           cfg: CfgNode | None = None) -> dict | None:
    """Test a trained run directory with its own config, architecture and last-epoch weights; writes
    results.json when the run has none yet, else retest.json (a finished record is never overwritten)."""
    from severe.engine import init_distributed

    run_dir = Path(run_dir)
    cfg, meta, ckpt = load_trained(task, run_dir, cfg)
    task = task.resolve(cfg)
    data_root = data_root_of(cfg, data_root, run_dir)
    task.check_data(data_root)
    check_writable(run_dir)  # before the evaluation, not after it
    model = task.build_model(cfg, meta, None)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise SevereError(f"{run_dir / LAST_CHECKPOINT} does not fit the run's model: {str(e).splitlines()[0]}") from None
    ctx = init_distributed()
    model.to(ctx.device)
    target = results_target(run_dir)
    job = Job(cfg, meta.get("method", "unknown"), meta, data_root, run_dir, ctx, progress=progress, retest=True,
              first_record=target.name == RESULTS_FILE)
    data = task.prepare(job)
    metrics, counts = task.evaluate(job, model, data)
    return _finish(task, job, metrics, counts, data, {}, results_file=target)


def trained_run_dir(cfg: CfgNode) -> Path:
    """The run directory a test-only command (a task's ``trains(cfg)`` False) tests."""
    if not cfg.RUN.OUT_DIR and not cfg.RUN.INIT.strip():
        raise SevereError("a test-only run tests a trained run: set --out (OUTPUT_DIR) to its directory (or --init "
                          "and SEED of its default runs/<experiment>/<method>/seed<N>)")
    return default_run_dir(cfg, cfg.RUN.INIT.strip().lower())
