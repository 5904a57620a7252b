"""The config vocabulary every task shares: one base schema, one internal name per concept, and the one
table of other names (PySlowFast's) that ``tools/run_net.py`` users know.

Base keys (each task's schema extends :func:`base_defaults`):

  EXPERIMENT.ID        names the run and the table column
  RUN.INIT             initialisation: scratch or a method id (``--init``)
  RUN.WEIGHTS          its weights file (``--weights``); empty for scratch
  RUN.DATA_ROOT        data root (``--data-root``); empty = $SEVERE_DATA
  RUN.OUT_DIR          run directory (``--out``); empty = runs/<EXPERIMENT.ID>/<method>/seed<SEED>
  SEED                 the one seed of the run (python, numpy, torch, loader workers, subsets)
  MODEL.ARCH           backbone architecture; empty = the initialisation's (scratch: r2plus1d_18)
  TRAIN.EPOCHS, TRAIN.BATCH_SIZE (global), TRAIN.CHECKPOINT_EVERY, TEST.BATCH_SIZE, DATA.NUM_WORKERS
"""

from __future__ import annotations

from typing import Any, Callable

from fvcore.common.config import CfgNode

from severe.errors import SevereError

# PySlowFast name -> internal name (accepted by the AVA and Charades tasks in files and KEY VALUE overrides)
SLOWFAST_ALIASES: dict[str, str] = {
    "MODEL.INIT_METHOD": "RUN.INIT",
    "MODEL.CKPT": "RUN.WEIGHTS",
    "DATA.PATH_TO_DATA_DIR": "RUN.DATA_ROOT",
    "OUTPUT_DIR": "RUN.OUT_DIR",
    "RNG_SEED": "SEED",
    "SOLVER.MAX_EPOCH": "TRAIN.EPOCHS",
    "SOLVER.BASE_LR": "TRAIN.LR",
    "SOLVER.MOMENTUM": "TRAIN.MOMENTUM",
    "SOLVER.NESTEROV": "TRAIN.NESTEROV",
    "SOLVER.WEIGHT_DECAY": "TRAIN.WEIGHT_DECAY",
    "DATA_LOADER.NUM_WORKERS": "DATA.NUM_WORKERS",
    "TRAIN.CHECKPOINT_PERIOD": "TRAIN.CHECKPOINT_EVERY",
    "MODEL.DROPOUT_RATE": "MODEL.DROPOUT",
}

# command-line option -> base key
FLAGS: dict[str, str] = {"init": "RUN.INIT", "weights": "RUN.WEIGHTS", "data_root": "RUN.DATA_ROOT", "out": "RUN.OUT_DIR"}

# where a run reads and writes, not what it trains: a resumed or re-tested run may change them
LOCATION_KEYS = ("RUN.DATA_ROOT", "RUN.OUT_DIR")

# test-time data switches a re-test (``severe run test RUN_DIR KEY VALUE``) may change besides TEST.*
TEST_TIME_KEYS = ("DATA.ALLOW_TEST_FAILURES", "DATA.ALLOW_MISSING")


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


def _at_least_one(v) -> bool:
    return v >= 1


def _fraction(v) -> bool:
    return 0 <= v <= 1


def _increasing_positive(v) -> bool:
    return all(m >= 1 for m in v) and all(a < b for a, b in zip(v, v[1:]))


def _fraction_range(v) -> bool:
    return len(v) == 2 and 0 < v[0] <= v[1] <= 1


# key -> (check, what it must be): value ranges every task shares, checked (for the keys a schema has)
# before anything is created on disk. Task-specific rules stay in each task's validate().
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "SEED": (_non_negative, "an integer >= 0"),
    "TRAIN.LR": (_positive, "> 0"),
    "TRAIN.WEIGHT_DECAY": (_non_negative, ">= 0"),
    "TRAIN.EPOCHS": (_at_least_one, ">= 1"),
    "TRAIN.BATCH_SIZE": (_at_least_one, ">= 1"),
    "TEST.BATCH_SIZE": (_at_least_one, ">= 1"),
    "TRAIN.MILESTONES": (_increasing_positive, "strictly increasing epochs >= 1"),
    "TRAIN.GAMMA": (_positive, "> 0"),
    "TRAIN.MOMENTUM": (_fraction, "in [0, 1]"),
    "TRAIN.ACCUM_STEPS": (_at_least_one, ">= 1"),
    "TRAIN.CHECKPOINT_EVERY": (_non_negative, ">= 0"),
    "TRAIN.MAX_BATCHES": (_at_least_one, ">= 1"),
    "TRAIN.MAX_INNER_STEPS": (_at_least_one, ">= 1"),
    "TRAIN.IOU_THRESHOLD": (_fraction, "in [0, 1]"),
    "DATA.NUM_WORKERS": (_non_negative, ">= 0"),
    "DATA.NUM_FRAMES": (_at_least_one, ">= 1"),
    "DATA.FPS": (_positive, "> 0"),
    "DATA.CROP": (_at_least_one, ">= 1"),
    "DATA.VAL_FRACTION": (_fraction, "in [0, 1]"),
    "DATA.TRAIN_CROP_SCALE": (_fraction_range, "[low, high] with 0 < low <= high <= 1"),
    "MODEL.DROPOUT": (_fraction, "in [0, 1]"),
    "MODEL.NUM_CLASSES": (_non_negative, ">= 0 (0 = the dataset's class count)"),
    "KNN.K": (_at_least_one, ">= 1"),
    "KNN.TEMPERATURE": (_positive, "> 0"),
    "SOLVER.WARMUP_EPOCHS": (_non_negative, ">= 0"),
    "SOLVER.WARMUP_START_LR": (_non_negative, ">= 0"),
    "BN.WEIGHT_DECAY": (_non_negative, ">= 0"),
}


def check_ranges(cfg: CfgNode, aliases: dict[str, str] | None = None) -> None:
    """One-line SevereError naming the first key of :data:`RANGES` (present in ``cfg``) whose value is out of
    range, with its other name in ``aliases`` (the task's: PySlowFast's) when it has one."""
    inverse = {v: k for k, v in (aliases or {}).items()}
    for key, (ok, must) in RANGES.items():
        node, *path = [cfg, *key.split(".")]
        for part in path:
            node = node.get(part) if isinstance(node, CfgNode) else None
        if node is None:
            continue
        value = list(node) if isinstance(node, (list, tuple)) else node
        try:
            good = ok(value)
        except TypeError:
            good = False
        if not good:
            alias = f" ({inverse[key]})" if key in inverse else ""
            raise SevereError(f"{key}{alias} must be {must}, got {value!r}")


def base_defaults() -> CfgNode:
    c = CfgNode()
    c.EXPERIMENT = CfgNode()
    c.EXPERIMENT.ID = ""
    c.RUN = CfgNode()
    c.RUN.INIT = ""
    c.RUN.WEIGHTS = ""
    c.RUN.DATA_ROOT = ""
    c.RUN.OUT_DIR = ""
    c.DATA = CfgNode()
    c.DATA.NUM_WORKERS = 4
    c.MODEL = CfgNode()
    c.MODEL.ARCH = ""  # "" = the initialisation's architecture; scratch runs may name any registered one
    # (severe.models.ARCHITECTURES: r2plus1d_18, r2plus1d_18_tclr, r3d_18, or your own via register_backbone)
    c.TRAIN = CfgNode()
    c.TRAIN.EPOCHS = 1
    c.TRAIN.BATCH_SIZE = 32  # global batch over all processes
    c.TRAIN.CHECKPOINT_EVERY = 0  # also keep checkpoint_eNNN.pt every N epochs (checkpoint_last.pt: every epoch)
    c.TEST = CfgNode()
    c.TEST.BATCH_SIZE = 1
    c.SEED = 0
    return c


def flag_overrides(**values: str | None) -> list[str]:
    """``KEY VALUE`` pairs of the command-line options that were given (``init=``, ``weights=`` ...)."""
    out: list[str] = []
    for name, value in values.items():
        if value is not None:
            out += [FLAGS[name], repr(str(value))]  # a quoted literal: "--out 2024" stays the text 2024
    return out


def alias_view(cfg: CfgNode) -> CfgNode:
    """``cfg`` with every key that has a PySlowFast name renamed to it (for tools that speak that dialect)."""
    from severe.config import _flatten, _nest, to_plain

    inverse = {v: k for k, v in SLOWFAST_ALIASES.items()}
    return CfgNode(_nest({inverse.get(k, k): v for k, v in _flatten(to_plain(cfg)).items()}))
