"""The ``Task`` interface: what one kind of experiment contributes to the shared run lifecycle
(:mod:`severe.tasks.lifecycle`). A task is a schema plus five steps the lifecycle calls in order:

    prepare(job)                 -> data      datasets / splits (writes subset lists into the run directory)
    build_model(cfg, meta, w)    -> model     backbone through lifecycle.make_backbone + the task's head
    train(job, model, data)      -> record    train_step(job, data) driven by a trainer; None = stopped early
    evaluate(job, model, data)   -> (metrics, counts)
    deviations(job, data, counts)-> list[str] where this run differs from the original code

The lifecycle owns everything around them: config resolution, the run directory, config.yaml /
init.json, seeding, resume, re-test and results.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fvcore.common.config import CfgNode
from torch import nn

from severe.config import find_config
from severe.errors import SevereError


@dataclass
class Job:
    """One execution of a task: the resolved config, where it reads and writes, and how."""

    cfg: CfgNode
    method: str
    meta: dict  # the initial weights' metadata (init.json)
    data_root: Path
    run_dir: Path
    ctx: Any  # severe.engine.DistContext
    resume: bool = False
    progress: bool = True
    retest: bool = False  # testing a trained run directory (no training data needed)
    first_record: bool = True  # results.json (True) or retest.json (False) is written
    stop_after_epoch: int | None = None  # tests: stop training early (the run is then unfinished)

    @property
    def out(self) -> Path | None:
        """Where side files (subset lists, predictions) go: the run directory on the main process, else None."""
        return self.run_dir if self.ctx.is_main else None


@dataclass(frozen=True)
class EntryPoint:
    """A ``severe run NAME`` command: the module and function that implement it, and one line of help."""

    module: str
    function: str
    help: str


class Task:
    """Base class of every task; subclasses set the class attributes and implement the steps."""

    name: ClassVar[str]
    description: ClassVar[str]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    percent: ClassVar[bool] = True  # primary value = 100 x the metric (accuracy, mAP); False = as is (error)
    config_dir: ClassVar[Path | None] = None  # where named configs live
    aliases: ClassVar[dict[str, str] | None] = None  # other key names this task's configs may use
    entry_points: ClassVar[dict[str, EntryPoint]] = {}
    test_free_keys: ClassVar[tuple[str, ...]] = ("TEST.", "DATA.NUM_WORKERS", "RUN.")  # a re-test may change these

    # ------------------------------------------------------------------ config
    def defaults(self) -> CfgNode:
        raise NotImplementedError

    def validate(self, cfg: CfgNode) -> None:
        """Value checks the schema's types cannot express (one SevereError line per mistake)."""

    def check_file(self, path: Path, overrides: list[str]) -> None:
        """Checks before the file is merged (e.g. that it is a config of this task)."""

    def init_rules(self, method: str, cfg: CfgNode) -> list:
        """Protocol exceptions of ``method`` (severe.recognition.config.InitRule), applied after the file."""
        return []

    def resolve(self, cfg: CfgNode) -> "Task":
        """The task that runs ``cfg`` (a config may select a variant sharing this schema)."""
        return self

    def find_config(self, name: str | Path) -> Path:
        if self.config_dir is None:
            path = Path(name)
            if not path.is_file():
                raise SevereError(f"config file not found: {path}")
            return path
        return find_config(name, self.config_dir)

    def trains(self, cfg: CfgNode) -> bool:
        """False: the command tests the trained run in RUN.OUT_DIR instead of training."""
        return True

    def tests(self, cfg: CfgNode) -> bool:
        """False: train only (no results.json)."""
        return True

    def identity(self, cfg: CfgNode) -> dict:
        """experiment_id, task, dataset, factor and mode of the results record."""
        raise NotImplementedError

    def check_retest(self, cfg: CfgNode, run_dir: Path) -> None:
        """Refuse run directories this task cannot re-test."""

    # ------------------------------------------------------------------ steps
    def check_data(self, data_root: Path) -> None:
        """Fail early (before the run directory is touched) when the data root lacks this task's folder."""

    def prepare(self, job: Job) -> Any:
        raise NotImplementedError

    def build_model(self, cfg: CfgNode, meta: dict, weights) -> nn.Module:
        raise NotImplementedError

    def train_step(self, job: Job, data: Any) -> Any:
        """The per-batch training step: a ``severe.engine.trainer.TrainStep`` (loss of one batch), or for a
        task whose batches take several optimiser steps, the object its trainer drives."""
        raise NotImplementedError

    def train(self, job: Job, model: nn.Module, data: Any) -> dict | None:
        """Fit ``model`` with :meth:`train_step` (resuming when ``job.resume``); returns extra entries of the
        results record, or None when training stopped before the last epoch."""
        raise NotImplementedError

    def evaluate(self, job: Job, model: nn.Module, data: Any) -> tuple[dict, dict]:
        raise NotImplementedError

    def deviations(self, job: Job, data: Any, counts: dict) -> list[str]:
        return []

    def data_record(self, data: Any, counts: dict) -> dict:
        """The ``data`` entry of results.json."""
        return counts

    def reported_metrics(self, metrics: dict) -> dict:
        return metrics

    def summary(self, record: dict) -> dict:
        """The one-line JSON the command prints."""
        return {"experiment_id": record["experiment_id"], "init": record["init_method"],
                record["primary"]["metric"]: record["primary"]["value"]}
