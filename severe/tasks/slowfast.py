"""What the AVA and Charades tasks share (``SlowFast-ssl-vssl/``): the schema of PySlowFast-style experiments
in the common vocabulary (PySlowFast's own names are accepted through severe.tasks.schema.SLOWFAST_ALIASES),
the SGD recipe from ``SOLVER.*``/``BN.*``, train/test switches, and the ``tools/run_net.py`` dispatcher.
Each task's schema holds only the keys its code reads: a key of the other task is an error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fvcore.common.config import CfgNode

from severe.configs import config_dir
from severe.config import read_yaml
from severe.errors import SevereError
from severe.tasks.base import Task
from severe.tasks.schema import SLOWFAST_ALIASES, base_defaults

CONFIG_DIR = config_dir("slowfast")


def slowfast_defaults(task: str) -> CfgNode:
    """Keys both tasks read (values = AVA's; Charades changes some)."""
    c = base_defaults()
    c.EXPERIMENT.ID = task
    c.TRAIN.ENABLE = True  # train (then test if TEST.ENABLE); False = test the finished run in RUN.OUT_DIR
    c.TRAIN.DATASET = task  # "ava" | "charades": the task a config file belongs to
    c.TRAIN.BATCH_SIZE = 32  # global batch over all processes
    c.TRAIN.EPOCHS = 20
    c.TEST.ENABLE = True
    c.TEST.BATCH_SIZE = 8
    c.DATA.NUM_FRAMES = 32
    c.DATA.SAMPLING_RATE = 2
    c.DATA.TRAIN_JITTER_SCALES = [256, 320]  # short side drawn in this range before the training crop
    c.DATA.INV_UNIFORM_SAMPLE = True  # draw the short side as 1 / U(1/max, 1/min) (else U(min, max))
    c.DATA.TRAIN_CROP_SIZE = 112
    c.DATA.TEST_CROP_SIZE = 112  # test short side (AVA: whole frame; Charades: then 112 crops)
    c.DATA.MEAN = [0.45, 0.45, 0.45]  # task normalisation (RGB); a checkpoint without one (TCLR) wins
    c.DATA.STD = [0.225, 0.225, 0.225]
    c.MODEL.NUM_CLASSES = 80
    c.MODEL.DROPOUT = 0.5
    c.TRAIN.LR = 0.1  # base lr (PySlowFast: SOLVER.BASE_LR)
    c.TRAIN.MOMENTUM = 0.9  # SOLVER.MOMENTUM
    c.TRAIN.NESTEROV = True  # SOLVER.NESTEROV
    c.TRAIN.WEIGHT_DECAY = 1e-7  # SOLVER.WEIGHT_DECAY
    c.SOLVER = CfgNode()  # PySlowFast's relative-steps schedule (no counterpart in the other tasks)
    c.SOLVER.LR_POLICY = "steps_with_relative_lrs"
    c.SOLVER.STEPS = [0, 10, 15, 20]  # epochs where each relative lr starts
    c.SOLVER.LRS = [1.0, 0.1, 0.01, 0.001]  # relative lrs (entries past len(STEPS) are never used)
    c.SOLVER.WARMUP_EPOCHS = 5.0
    c.SOLVER.WARMUP_START_LR = 0.000125
    c.BN = CfgNode()
    c.BN.WEIGHT_DECAY = 0.0  # weight decay of BatchNorm weights and biases (PySlowFast's default 0)
    c.SEED = 0
    return c


def _relative_steps(s: CfgNode, base_lr: float):
    from severe.engine import RelativeStepsLR

    return RelativeStepsLR(base_lr, list(s.STEPS), list(s.LRS)[: len(s.STEPS)], warmup_epochs=s.WARMUP_EPOCHS,
                           warmup_start_lr=s.WARMUP_START_LR)


SCHEDULES = {"steps_with_relative_lrs": _relative_steps}


def solver_from_config(cfg: CfgNode):
    """(OptimizerSpec, LRSchedule) of PySlowFast's SGD recipe: momentum, Nesterov, weight decay, BN decay."""
    from severe.engine import OptimizerSpec

    t = cfg.TRAIN
    spec = OptimizerSpec("sgd", weight_decay=t.WEIGHT_DECAY, momentum=t.MOMENTUM, nesterov=t.NESTEROV,
                         bn_weight_decay=cfg.BN.WEIGHT_DECAY)
    return spec, SCHEDULES[cfg.SOLVER.LR_POLICY](cfg.SOLVER, t.LR)


def validate_common(cfg: CfgNode, num_classes: int, task: str) -> list[tuple[bool, str]]:
    d, s = cfg.DATA, cfg.SOLVER
    return [
        (cfg.TRAIN.ENABLE or cfg.TEST.ENABLE, "TRAIN.ENABLE and TEST.ENABLE are both False: nothing to do"),
        (cfg.TRAIN.BATCH_SIZE > 0 and cfg.TEST.BATCH_SIZE > 0, "TRAIN.BATCH_SIZE and TEST.BATCH_SIZE must be positive"),
        (cfg.TRAIN.CHECKPOINT_EVERY >= 0, f"TRAIN.CHECKPOINT_EVERY must be >= 0, got {cfg.TRAIN.CHECKPOINT_EVERY}"),
        (d.NUM_FRAMES > 0 and d.SAMPLING_RATE > 0, "DATA.NUM_FRAMES and DATA.SAMPLING_RATE must be positive"),
        (len(d.TRAIN_JITTER_SCALES) == 2 and 0 < d.TRAIN_JITTER_SCALES[0] <= d.TRAIN_JITTER_SCALES[1],
         f"DATA.TRAIN_JITTER_SCALES must be [min, max] with 0 < min <= max, got {list(d.TRAIN_JITTER_SCALES)}"),
        (d.TRAIN_CROP_SIZE > 0 and d.TEST_CROP_SIZE > 0, "DATA.TRAIN_CROP_SIZE and DATA.TEST_CROP_SIZE must be positive"),
        (len(d.TRAIN_JITTER_SCALES) != 2 or d.TRAIN_JITTER_SCALES[0] >= d.TRAIN_CROP_SIZE,
         f"DATA.TRAIN_JITTER_SCALES {list(d.TRAIN_JITTER_SCALES)} must not go below DATA.TRAIN_CROP_SIZE {d.TRAIN_CROP_SIZE}"),
        (len(d.MEAN) == 3 and len(d.STD) == 3 and min(d.STD) > 0, "DATA.MEAN and DATA.STD need 3 values each (std > 0)"),
        (cfg.MODEL.NUM_CLASSES == num_classes,
         f"MODEL.NUM_CLASSES must be {num_classes} for {task} (the head's outputs), got {cfg.MODEL.NUM_CLASSES}"),
        (0.0 <= cfg.MODEL.DROPOUT < 1.0, f"MODEL.DROPOUT must be in [0, 1), got {cfg.MODEL.DROPOUT}"),
        (s.LR_POLICY in SCHEDULES, f"SOLVER.LR_POLICY must be one of {', '.join(SCHEDULES)}, got {s.LR_POLICY!r}"),
        (len(s.STEPS) >= 1 and s.STEPS[0] == 0 and list(s.STEPS) == sorted(s.STEPS),
         f"SOLVER.STEPS must start at 0 and increase, got {list(s.STEPS)}"),
        (len(s.LRS) >= len(s.STEPS), f"SOLVER.LRS ({len(s.LRS)} values) needs one value per SOLVER.STEPS entry ({len(s.STEPS)})"),
        (cfg.TRAIN.EPOCHS > 0, f"TRAIN.EPOCHS must be positive, got {cfg.TRAIN.EPOCHS}"),
        (cfg.TRAIN.LR > 0 and s.WARMUP_EPOCHS >= 0 and s.WARMUP_START_LR >= 0,
         "TRAIN.LR (SOLVER.BASE_LR) must be > 0, SOLVER.WARMUP_EPOCHS and SOLVER.WARMUP_START_LR >= 0"),
        (cfg.TRAIN.WEIGHT_DECAY >= 0 and cfg.BN.WEIGHT_DECAY >= 0,
         "TRAIN.WEIGHT_DECAY (SOLVER.WEIGHT_DECAY) and BN.WEIGHT_DECAY must be >= 0"),
        (cfg.DATA.NUM_WORKERS >= 0, "DATA.NUM_WORKERS must be >= 0"),
    ]


def raise_first(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise SevereError(message)


class SlowFastTask(Task):
    """Base of the PySlowFast-style tasks: aliases, train/test switches, the data folder check."""

    percent = True
    primary_metric = "mAP"
    config_dir = CONFIG_DIR  # names like AVA/R2PLUS1D_18_32x2_112 resolve inside the package
    aliases = SLOWFAST_ALIASES
    test_free_keys = ("TRAIN.ENABLE", "TEST.", "DATA.NUM_WORKERS", "RUN.")
    dataset: str = ""

    def check_file(self, path: Path, overrides: list[str]) -> None:
        found = config_task(path, overrides)
        if found != self.name:
            raise SevereError(f"{path} is a {found} config (TRAIN.DATASET {found}); run it with 'severe run {found}'")

    def trains(self, cfg: CfgNode) -> bool:
        return bool(cfg.TRAIN.ENABLE)

    def tests(self, cfg: CfgNode) -> bool:
        return bool(cfg.TEST.ENABLE)

    def check_data(self, data_root: Path) -> None:
        from severe.data.registry import dataset_dir

        folder = dataset_dir(data_root, self.dataset)
        if not folder.is_dir():
            raise SevereError(f"{self.name} folder {folder} does not exist under the data root {data_root}")

    def identity(self, cfg: CfgNode) -> dict:
        return {"experiment_id": cfg.EXPERIMENT.ID, "task": self.name, "dataset": self.dataset, "factor": "task",
                "mode": "finetune"}


# ------------------------------------------------------------------------------------------- tools/run_net.py

def config_task(path: str | Path, overrides: Sequence[str] = ()) -> str:
    """The task a config file names in ``TRAIN.DATASET`` (following ``_BASE_``; overrides win)."""
    from severe.tasks import TASKS

    value = None
    for key, val in zip(overrides[::2], overrides[1::2]):
        if key == "TRAIN.DATASET":
            value = val
    if value is None:
        value = _dataset_in_file(Path(path))
    tasks = [name for name, task in TASKS.items() if isinstance(task, SlowFastTask)]
    if value not in tasks:
        raise SevereError(f"{path}: TRAIN.DATASET must be one of {', '.join(tasks)}, got {value!r}")
    return value


def _dataset_in_file(path: Path) -> str | None:
    data = read_yaml(path)
    train = data.get("TRAIN")
    if isinstance(train, dict) and "DATASET" in train:
        return train["DATASET"]
    base = data.get("_BASE_")
    return _dataset_in_file(path.parent / base) if base else None


def run_net_main(argv: list[str], prog: str = "run_net.py") -> int:
    """``tools/run_net.py --cfg FILE [KEY VALUE ...]`` (or the common form): run the task the config's
    TRAIN.DATASET names."""
    from severe.tasks import TASKS
    from severe.tasks.cli import execute, parse, print_summary

    args = parse(TASKS["ava"], argv, prog, "Train and/or test an AVA or Charades experiment; the config's "
                                           "TRAIN.DATASET (ava or charades) picks the task.")
    task = TASKS[config_task(args.config, args.overrides)]
    record, run_dir = execute(task, args)
    print_summary(task, record, run_dir)
    return 0


__all__ = ["SlowFastTask", "slowfast_defaults", "solver_from_config", "config_task", "run_net_main"]
