"""PySlowFast-style experiment configs of the AVA and Charades tasks (``SlowFast-ssl-vssl/``).

Keys keep PySlowFast's names (``TRAIN.BATCH_SIZE``, ``SOLVER.BASE_LR``, ``AVA.DETECTION_SCORE_THRESH`` ...)
but each task's schema holds **only the keys its code reads** (pitfalls.md 26): a key of the other task,
or any unknown key, is an error naming the file. ``TRAIN.DATASET`` ("ava" or "charades") selects the
schema. Everything here runs at the entry point; datasets and models receive explicit values.

Also here: the pieces both task runners share at the entry point (initial weights from
``MODEL.INIT_METHOD``/``MODEL.CKPT``, the optimiser and schedule from ``SOLVER.*``/``BN.*``, the run
directory, the command line) and ``run_net_main``, the dispatcher behind ``tools/run_net.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import yaml
from fvcore.common.config import CfgNode

from severe.config import load_config, read_yaml, to_plain
from severe.errors import SevereError

__all__ = [
    "TASKS",
    "ava_defaults",
    "charades_defaults",
    "config_task",
    "load_task_config",
    "InitPlan",
    "resolve_init",
    "solver_from_config",
    "task_data_dir",
    "output_dir",
    "write_or_check_config",
    "check_test_config",
    "trained_run_dir",
    "load_trained_weights",
    "task_parser",
    "run_net_main",
]

TASK_DATASET = {"ava": "ava", "charades": "charades"}  # TRAIN.DATASET -> registry dataset id
CONFIG_FILE, INIT_FILE = "config.yaml", "init.json"


# ------------------------------------------------------------------------------------------- schemas

def _common() -> CfgNode:
    c = CfgNode()
    c.TRAIN = CfgNode()
    c.TRAIN.ENABLE = True  # train (then test if TEST.ENABLE); False = test the finished run in OUTPUT_DIR
    c.TRAIN.DATASET = ""  # "ava" | "charades": selects the task and this schema
    c.TRAIN.BATCH_SIZE = 32  # global batch over all processes
    c.TRAIN.CHECKPOINT_PERIOD = 0  # keep checkpoint_eNNN.pt every N epochs (checkpoint_last.pt: every epoch)
    c.TEST = CfgNode()
    c.TEST.ENABLE = True
    c.TEST.BATCH_SIZE = 8
    c.DATA = CfgNode()
    c.DATA.PATH_TO_DATA_DIR = ""  # the data root holding ava/ and charades/; empty = $SEVERE_DATA
    c.DATA.NUM_FRAMES = 32
    c.DATA.SAMPLING_RATE = 2
    c.DATA.TRAIN_JITTER_SCALES = [256, 320]  # short side drawn in this range before the training crop
    c.DATA.INV_UNIFORM_SAMPLE = True  # draw the short side as 1 / U(1/max, 1/min) (else U(min, max))
    c.DATA.TRAIN_CROP_SIZE = 112
    c.DATA.TEST_CROP_SIZE = 112  # test short side (AVA: whole frame; Charades: then 112 crops)
    c.DATA.MEAN = [0.45, 0.45, 0.45]  # task normalisation (RGB); a checkpoint without one (TCLR) wins
    c.DATA.STD = [0.225, 0.225, 0.225]
    c.MODEL = CfgNode()
    c.MODEL.NUM_CLASSES = 80
    c.MODEL.INIT_METHOD = ""  # scratch | supervised | selavi | moco | video_moco | pretext_contrast | rspnet | avid_cma | ctp | tubelet_contrast | tclr | gdt
    c.MODEL.CKPT = ""  # converted weights (severe convert) or the published checkpoint; empty for scratch
    c.MODEL.DROPOUT_RATE = 0.5
    c.SOLVER = CfgNode()
    c.SOLVER.BASE_LR = 0.1
    c.SOLVER.LR_POLICY = "steps_with_relative_lrs"
    c.SOLVER.STEPS = [0, 10, 15, 20]  # epochs where each relative lr starts
    c.SOLVER.LRS = [1.0, 0.1, 0.01, 0.001]  # relative lrs (entries past len(STEPS) are never used)
    c.SOLVER.MAX_EPOCH = 20
    c.SOLVER.MOMENTUM = 0.9
    c.SOLVER.NESTEROV = True
    c.SOLVER.WEIGHT_DECAY = 1e-7
    c.SOLVER.WARMUP_EPOCHS = 5.0
    c.SOLVER.WARMUP_START_LR = 0.000125
    c.BN = CfgNode()
    c.BN.WEIGHT_DECAY = 0.0  # weight decay of BatchNorm weights and biases (PySlowFast's default 0)
    c.DATA_LOADER = CfgNode()
    c.DATA_LOADER.NUM_WORKERS = 4
    c.RNG_SEED = 0  # the one seed of the run (python, numpy, torch, loaders, sampling)
    c.OUTPUT_DIR = ""  # run directory; empty = runs/<task>/<method>/seed<RNG_SEED>
    return c


def ava_defaults() -> CfgNode:
    """AVA v2.2 detection schema; defaults = tasks.md §1.3."""
    c = _common()
    c.TRAIN.DATASET = "ava"
    c.DETECTION = CfgNode()
    c.DETECTION.ROI_XFORM_RESOLUTION = 7
    c.DETECTION.SPATIAL_SCALE_FACTOR = 16  # feature stride: RoIAlign spatial_scale = 1 / this
    c.AVA = CfgNode()
    c.AVA.DETECTION_SCORE_THRESH = 0.9
    c.AVA.TRAIN_LISTS = ["train.csv"]  # frame lists under ava/frame_lists/
    c.AVA.TEST_LISTS = ["val.csv"]
    c.AVA.TRAIN_GT_BOX_LISTS = ["ava_train_v2.2.csv"]  # under ava/annotations/, all rows used
    c.AVA.TRAIN_PREDICT_BOX_LISTS = ["person_box_67091280_iou90/ava_detection_train_boxes_and_labels_include_negative_v2.2.csv"]
    c.AVA.TEST_PREDICT_BOX_LISTS = ["person_box_67091280_iou90/ava_detection_val_boxes_and_labels.csv"]
    c.AVA.GROUNDTRUTH_FILE = "ava_val_v2.2.csv"
    c.AVA.EXCLUSION_FILE = "ava_val_excluded_timestamps_v2.2.csv"
    c.AVA.LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    return c


def charades_defaults() -> CfgNode:
    """Charades v1 multi-label schema; defaults = tasks.md §2.3."""
    c = _common()
    c.TRAIN.DATASET = "charades"
    c.TRAIN.BATCH_SIZE = 16
    c.TRAIN.CHECKPOINT_PERIOD = 6
    c.TEST.BATCH_SIZE = 1  # videos per forward pass (each holds NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS views)
    c.TEST.NUM_ENSEMBLE_VIEWS = 10  # temporal clips per test video
    c.TEST.NUM_SPATIAL_CROPS = 3  # 3 = left/centre/right (top/middle/bottom for portrait); 1 = centre
    c.DATA.SAMPLING_RATE = 8
    c.DATA.TRAIN_JITTER_SCALES = [256, 340]
    c.MODEL.NUM_CLASSES = 157
    c.SOLVER.BASE_LR = 0.0375
    c.SOLVER.STEPS = [0, 41, 49]
    c.SOLVER.LRS = [1.0, 0.1, 0.01]
    c.SOLVER.MAX_EPOCH = 57
    c.SOLVER.WEIGHT_DECAY = 1e-4
    c.SOLVER.WARMUP_EPOCHS = 4.0
    c.SOLVER.WARMUP_START_LR = 0.0001
    c.BN.USE_PRECISE_STATS = True  # recompute BN statistics at checkpoint epochs and the last epoch
    c.BN.NUM_BATCHES_PRECISE = 200
    c.RNG_SEED = 1
    return c


TASKS: dict[str, Callable[[], CfgNode]] = {"ava": ava_defaults, "charades": charades_defaults}

# task -> (module, function) of its command line
_ENTRIES = {"ava": ("severe.detection.cli", "main"), "charades": ("severe.multilabel.cli", "main")}


def config_task(path: str | Path, overrides: Sequence[str] = ()) -> str:
    """The task a config file names in ``TRAIN.DATASET`` (following ``_BASE_``; overrides win)."""
    value = None
    for key, val in zip(overrides[::2], overrides[1::2]):
        if key == "TRAIN.DATASET":
            value = val
    if value is None:
        value = _dataset_in_file(Path(path))
    if value not in TASKS:
        raise SevereError(f"{path}: TRAIN.DATASET must be one of {', '.join(TASKS)}, got {value!r}")
    return value


def _dataset_in_file(path: Path) -> str | None:
    data = read_yaml(path)
    train = data.get("TRAIN")
    if isinstance(train, dict) and "DATASET" in train:
        return train["DATASET"]
    base = data.get("_BASE_")
    return _dataset_in_file(path.parent / base) if base else None


def load_task_config(task: str, path: str | Path, overrides: Sequence[str] = ()) -> CfgNode:
    """defaults of ``task`` <- file <- ``KEY VALUE`` overrides, validated; a frozen CfgNode."""
    if task not in TASKS:
        raise SevereError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    found = config_task(path, overrides)
    if found != task:
        raise SevereError(f"{path} is a {found} config (TRAIN.DATASET {found}); run it with 'severe run {found}'")
    cfg = load_config(TASKS[task](), path, list(overrides))
    validate(cfg, task)
    return cfg


def validate(cfg: CfgNode, task: str) -> None:
    """Value checks the schema's types cannot express; one line per mistake."""
    from severe.data.registry import get_dataset

    d, s = cfg.DATA, cfg.SOLVER
    num_classes = get_dataset(TASK_DATASET[task]).num_classes
    checks = [
        (cfg.TRAIN.ENABLE or cfg.TEST.ENABLE, "TRAIN.ENABLE and TEST.ENABLE are both False: nothing to do"),
        (cfg.TRAIN.BATCH_SIZE > 0 and cfg.TEST.BATCH_SIZE > 0, "TRAIN.BATCH_SIZE and TEST.BATCH_SIZE must be positive"),
        (cfg.TRAIN.CHECKPOINT_PERIOD >= 0, f"TRAIN.CHECKPOINT_PERIOD must be >= 0, got {cfg.TRAIN.CHECKPOINT_PERIOD}"),
        (d.NUM_FRAMES > 0 and d.SAMPLING_RATE > 0, "DATA.NUM_FRAMES and DATA.SAMPLING_RATE must be positive"),
        (len(d.TRAIN_JITTER_SCALES) == 2 and 0 < d.TRAIN_JITTER_SCALES[0] <= d.TRAIN_JITTER_SCALES[1],
         f"DATA.TRAIN_JITTER_SCALES must be [min, max] with 0 < min <= max, got {list(d.TRAIN_JITTER_SCALES)}"),
        (d.TRAIN_CROP_SIZE > 0 and d.TEST_CROP_SIZE > 0, "DATA.TRAIN_CROP_SIZE and DATA.TEST_CROP_SIZE must be positive"),
        (len(d.TRAIN_JITTER_SCALES) != 2 or d.TRAIN_JITTER_SCALES[0] >= d.TRAIN_CROP_SIZE,
         f"DATA.TRAIN_JITTER_SCALES {list(d.TRAIN_JITTER_SCALES)} must not go below DATA.TRAIN_CROP_SIZE {d.TRAIN_CROP_SIZE}"),
        (len(d.MEAN) == 3 and len(d.STD) == 3 and min(d.STD) > 0, "DATA.MEAN and DATA.STD need 3 values each (std > 0)"),
        (cfg.MODEL.NUM_CLASSES == num_classes,
         f"MODEL.NUM_CLASSES must be {num_classes} for {task} (the head's outputs), got {cfg.MODEL.NUM_CLASSES}"),
        (0.0 <= cfg.MODEL.DROPOUT_RATE < 1.0, f"MODEL.DROPOUT_RATE must be in [0, 1), got {cfg.MODEL.DROPOUT_RATE}"),
        (s.LR_POLICY in _SCHEDULES, f"SOLVER.LR_POLICY must be one of {', '.join(_SCHEDULES)}, got {s.LR_POLICY!r}"),
        (len(s.STEPS) >= 1 and s.STEPS[0] == 0 and list(s.STEPS) == sorted(s.STEPS),
         f"SOLVER.STEPS must start at 0 and increase, got {list(s.STEPS)}"),
        (len(s.LRS) >= len(s.STEPS), f"SOLVER.LRS ({len(s.LRS)} values) needs one value per SOLVER.STEPS entry ({len(s.STEPS)})"),
        (s.MAX_EPOCH > 0, f"SOLVER.MAX_EPOCH must be positive, got {s.MAX_EPOCH}"),
        (s.BASE_LR > 0 and s.WARMUP_EPOCHS >= 0 and s.WARMUP_START_LR >= 0,
         "SOLVER.BASE_LR must be > 0, SOLVER.WARMUP_EPOCHS and SOLVER.WARMUP_START_LR >= 0"),
        (s.WEIGHT_DECAY >= 0 and cfg.BN.WEIGHT_DECAY >= 0, "SOLVER.WEIGHT_DECAY and BN.WEIGHT_DECAY must be >= 0"),
        (cfg.DATA_LOADER.NUM_WORKERS >= 0, "DATA_LOADER.NUM_WORKERS must be >= 0"),
    ]
    if task == "ava":
        checks += [
            (cfg.DETECTION.ROI_XFORM_RESOLUTION > 0 and cfg.DETECTION.SPATIAL_SCALE_FACTOR > 0,
             "DETECTION.ROI_XFORM_RESOLUTION and DETECTION.SPATIAL_SCALE_FACTOR must be positive"),
            (0.0 <= cfg.AVA.DETECTION_SCORE_THRESH <= 1.0,
             f"AVA.DETECTION_SCORE_THRESH must be in [0, 1], got {cfg.AVA.DETECTION_SCORE_THRESH}"),
            (all(len(cfg.AVA[k]) > 0 for k in ("TRAIN_LISTS", "TEST_LISTS", "TEST_PREDICT_BOX_LISTS")),
             "AVA.TRAIN_LISTS, AVA.TEST_LISTS and AVA.TEST_PREDICT_BOX_LISTS must name at least one file"),
            (len(cfg.AVA.TRAIN_GT_BOX_LISTS) + len(cfg.AVA.TRAIN_PREDICT_BOX_LISTS) > 0,
             "AVA.TRAIN_GT_BOX_LISTS and AVA.TRAIN_PREDICT_BOX_LISTS are both empty: no training boxes"),
        ]
    else:
        checks += [
            (cfg.TEST.NUM_ENSEMBLE_VIEWS >= 1, f"TEST.NUM_ENSEMBLE_VIEWS must be >= 1, got {cfg.TEST.NUM_ENSEMBLE_VIEWS}"),
            (cfg.TEST.NUM_SPATIAL_CROPS in (1, 3), f"TEST.NUM_SPATIAL_CROPS must be 1 (centre) or 3, got {cfg.TEST.NUM_SPATIAL_CROPS}"),
            (not cfg.BN.USE_PRECISE_STATS or cfg.BN.NUM_BATCHES_PRECISE > 0,
             f"BN.NUM_BATCHES_PRECISE must be positive, got {cfg.BN.NUM_BATCHES_PRECISE}"),
        ]
    for ok, message in checks:
        if not ok:
            raise SevereError(message)


# ------------------------------------------------------------------------------------------- init weights

@dataclass
class InitPlan:
    """The initial backbone: canonical method id, weights (None = scratch) and the input convention."""

    method: str
    weights: object | None  # severe.checkpoints.convert.Converted
    meta: dict


def resolve_init(init_method: str, ckpt: str, trust: bool = False) -> InitPlan:
    """``MODEL.INIT_METHOD`` / ``MODEL.CKPT`` -> weights (strictly checked) and their ``meta``."""
    from severe.checkpoints.weights import SCRATCH_META, check_initialisation, load_weights

    if not init_method.strip():
        raise SevereError("MODEL.INIT_METHOD is empty: set it to scratch or a method id (e.g. MODEL.INIT_METHOD gdt "
                          "MODEL.CKPT path/to/gdt_K400.pth)")
    method = check_initialisation(init_method, ckpt, "MODEL.INIT_METHOD", "MODEL.CKPT")
    if method == "scratch":
        return InitPlan("scratch", None, dict(SCRATCH_META))
    weights = load_weights(ckpt, method=method, trust=trust)
    return InitPlan(method, weights, dict(weights.meta))


# ------------------------------------------------------------------------------------------- solver

def _relative_steps(s: CfgNode):
    from severe.engine import RelativeStepsLR

    return RelativeStepsLR(s.BASE_LR, list(s.STEPS), list(s.LRS)[: len(s.STEPS)], warmup_epochs=s.WARMUP_EPOCHS,
                           warmup_start_lr=s.WARMUP_START_LR)


_SCHEDULES = {"steps_with_relative_lrs": _relative_steps}


def solver_from_config(cfg: CfgNode):
    """(OptimizerSpec, LRSchedule) of PySlowFast's SGD recipe: momentum, Nesterov, weight decay, BN decay."""
    from severe.engine import OptimizerSpec

    s = cfg.SOLVER
    spec = OptimizerSpec("sgd", weight_decay=s.WEIGHT_DECAY, momentum=s.MOMENTUM, nesterov=s.NESTEROV,
                         bn_weight_decay=cfg.BN.WEIGHT_DECAY)
    return spec, _SCHEDULES[s.LR_POLICY](s)


# ------------------------------------------------------------------------------------------- run directory

def task_data_dir(cfg: CfgNode, task: str) -> Path:
    """``<data root>/<dataset folder>``: the root from DATA.PATH_TO_DATA_DIR, else $SEVERE_DATA."""
    from severe.data.registry import ENV_DATA_ROOT, dataset_dir

    value = cfg.DATA.PATH_TO_DATA_DIR or os.environ.get(ENV_DATA_ROOT, "")
    source = "DATA.PATH_TO_DATA_DIR" if cfg.DATA.PATH_TO_DATA_DIR else f"${ENV_DATA_ROOT}"
    if not value:
        raise SevereError(f"no data root: set DATA.PATH_TO_DATA_DIR (in the config or as an override) or ${ENV_DATA_ROOT}")
    root = Path(value).expanduser()
    if not root.is_dir():
        raise SevereError(f"data root {root} (from {source}) is not an existing folder")
    folder = dataset_dir(root, TASK_DATASET[task])
    if not folder.is_dir():
        raise SevereError(f"{task} folder {folder} does not exist under the data root {root} (from {source})")
    return folder


def output_dir(cfg: CfgNode, method: str) -> Path:
    """``OUTPUT_DIR``, or ``runs/<task>/<method>/seed<RNG_SEED>`` when it is empty."""
    if cfg.OUTPUT_DIR:
        return Path(cfg.OUTPUT_DIR)
    return Path("runs") / cfg.TRAIN.DATASET / method / f"seed{cfg.RNG_SEED}"


def write_or_check_config(run_dir: Path, cfg: CfgNode) -> None:
    """Write ``config.yaml`` once; a resumed run must bring the identical config."""
    text = yaml.safe_dump(to_plain(cfg), sort_keys=True)
    path = Path(run_dir) / CONFIG_FILE
    if path.exists():
        if path.read_text(encoding="utf-8") != text:
            first = _differences(yaml.safe_load(path.read_text(encoding="utf-8")), to_plain(cfg))
            raise SevereError(f"{path} differs from this command's config (first difference: {first[:1]}); resume "
                              f"with the same config and overrides, or choose another OUTPUT_DIR")
        return
    from severe.io import atomic_write_text

    atomic_write_text(path, text)


# keys a test-only run may change (how and where it tests, not what was trained)
_TEST_FREE = ("TRAIN.ENABLE", "TEST.", "DATA_LOADER.", "DATA.PATH_TO_DATA_DIR", "OUTPUT_DIR", "MODEL.CKPT")


def check_test_config(run_dir: Path, cfg: CfgNode) -> dict:
    """For a test-only run: the trained run's config must agree with ``cfg`` except test settings.

    Returns the run's ``init.json`` (method, arch, input convention).
    """
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, INIT_FILE):
        if not (run_dir / name).is_file():
            raise SevereError(f"TRAIN.ENABLE False tests the trained run in OUTPUT_DIR, but {run_dir / name} is missing; "
                              f"set OUTPUT_DIR to a run directory")
    trained = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    diffs = [k for k in _differences(trained, to_plain(cfg)) if not k.startswith(_TEST_FREE)]
    if diffs:
        raise SevereError(f"{run_dir / CONFIG_FILE}: {diffs[0]} differs from this config; a test-only run may change "
                          f"only TEST.*, DATA_LOADER.*, DATA.PATH_TO_DATA_DIR and TRAIN.ENABLE")
    meta = json.loads((run_dir / INIT_FILE).read_text(encoding="utf-8"))
    if cfg.MODEL.INIT_METHOD and cfg.MODEL.INIT_METHOD.strip().lower() != meta.get("method"):
        raise SevereError(f"{run_dir} was trained from '{meta.get('method')}', not MODEL.INIT_METHOD "
                          f"'{cfg.MODEL.INIT_METHOD}'")
    return meta


@dataclass
class TaskStart:
    """Where an AVA/Charades run works and with which weights: ``init`` is None for a test-only run."""

    run_dir: Path
    meta: dict
    method: str
    init: "InitPlan | None"
    resume: bool


def start_task_run(cfg: CfgNode, is_main: bool, trust: bool, resume: bool) -> TaskStart:
    """TRAIN.ENABLE: resolve the initial weights and prepare the run directory (config and init.json
    written once; resume only when a checkpoint exists). Otherwise: the trained run to test."""
    from severe.engine.trainer import LAST_CHECKPOINT
    from severe.io import atomic_write_json
    from severe.results import prepare_run_dir

    if cfg.TRAIN.ENABLE:
        init = resolve_init(cfg.MODEL.INIT_METHOD, cfg.MODEL.CKPT, trust)
        run_dir = output_dir(cfg, init.method)
        if is_main:
            prepare_run_dir(run_dir, resume=resume)
            write_or_check_config(run_dir, cfg)
            atomic_write_json(run_dir / INIT_FILE, init.meta)
        return TaskStart(run_dir, init.meta, init.method, init, resume and (run_dir / LAST_CHECKPOINT).exists())
    run_dir = trained_run_dir(cfg)
    meta = check_test_config(run_dir, cfg)
    return TaskStart(run_dir, meta, meta["method"], None, False)


def trained_run_dir(cfg: CfgNode) -> Path:
    """The run directory a test-only run (TRAIN.ENABLE False) tests."""
    if not cfg.OUTPUT_DIR and not cfg.MODEL.INIT_METHOD.strip():
        raise SevereError("TRAIN.ENABLE False tests a trained run: set OUTPUT_DIR to its directory (or "
                          "MODEL.INIT_METHOD and RNG_SEED of its default runs/<task>/<method>/seed<N>)")
    return output_dir(cfg, cfg.MODEL.INIT_METHOD.strip().lower())


def load_trained_weights(model, run_dir: Path, epochs: int) -> None:
    """Load the last-epoch weights of a finished run into ``model`` (strict)."""
    from severe.engine import load_checkpoint
    from severe.engine.trainer import LAST_CHECKPOINT

    path = Path(run_dir) / LAST_CHECKPOINT
    if not path.is_file():
        raise SevereError(f"{run_dir} has no {LAST_CHECKPOINT}: train it first (TRAIN.ENABLE True)")
    ckpt = load_checkpoint(path)
    if ckpt["epoch"] + 1 != epochs:
        raise SevereError(f"{run_dir}: training stopped after epoch {ckpt['epoch'] + 1} of {epochs}; resume it "
                          f"first (the training command with --resume)")
    model.load_state_dict(ckpt["model"], strict=True)


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


# ------------------------------------------------------------------------------------------- command line

EPILOG = """KEY VALUE pairs after the options override config keys, e.g. MODEL.INIT_METHOD gdt
MODEL.CKPT ../checkpoints_pretraining/gdt/gdt_K400.pth RNG_SEED 2 OUTPUT_DIR runs/charades/gdt/seed2.
TRAIN.ENABLE False tests the finished run in OUTPUT_DIR. Multi-GPU: torchrun --nproc_per_node N
tools/run_net.py ... (TRAIN.BATCH_SIZE stays the global batch)."""


def task_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, metavar="FILE", help="experiment config (e.g. configs/AVA/R2PLUS1D_18_32x2_112.yaml)")
    p.add_argument("opts", metavar="KEY VALUE", nargs="*", help="config overrides")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in OUTPUT_DIR exactly where it stopped")
    p.add_argument("--trust", action="store_true", help="allow unpickling Python objects in a raw checkpoint you trust")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def run_net_main(argv: list[str], prog: str = "run_net.py") -> int:
    """``tools/run_net.py --cfg FILE [KEY VALUE ...]``: run the task the config's TRAIN.DATASET names."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--cfg")
    known, rest = probe.parse_known_args(argv)
    if known.cfg is None:  # prints the help, or the missing --cfg error
        task_parser(prog, "Train and/or test an AVA or Charades experiment (PySlowFast-style config).").parse_intermixed_args(argv)
        return 2
    task = config_task(known.cfg, [a for a in rest if not a.startswith("--")])
    module, function = _ENTRIES[task]
    return getattr(importlib.import_module(module), function)(argv, prog=prog)
