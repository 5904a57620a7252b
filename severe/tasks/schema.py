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

from fvcore.common.config import CfgNode

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
