"""Recognition recipes per backbone family (docs/protocol.md §15).

The CNN rows follow the SEVERE protocol of the experiment configs unchanged (recipe ``severe``). A ViT backbone
(families of :data:`VIT_FAMILIES`) runs the VideoMAE finetuning recipe (recipe ``videomae``): its settings are a
protocol exception like the per-method ones of the method table, applied after the config file and before the
command-line overrides (so any single key can still be overridden), and recorded in init.json and results.json.
SEVERE++ has not published its ViT settings: the recipe is inferred (docs/protocol.md §15).

The recipe keys added to the recognition schema default to the CNN behaviour (no effect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fvcore.common.config import CfgNode
from torch import nn

from severe.checkpoints.methods import METHODS, InitRule
from severe.errors import SevereError
from severe.models.registry import BACKBONES
from severe.models.vit import VIT_FAMILIES

SCHEDULE_KINDS = ("multistep", "warmup_cosine")


def add_recipe_keys(c: CfgNode) -> None:
    """The recipe keys of the recognition schema; the defaults change nothing (the CNN protocol)."""
    c.TRAIN.RECIPE = "severe"  # name recorded in results.json: severe (the configs as written) | videomae (ViT)
    c.TRAIN.SCHEDULE = "multistep"  # multistep (LR, MILESTONES, GAMMA) | warmup_cosine (WARMUP_EPOCHS, MIN_LR)
    c.TRAIN.WARMUP_EPOCHS = 0  # warm-up epochs of the warmup_cosine schedule
    c.TRAIN.WARMUP_START_LR = 0.0
    c.TRAIN.MIN_LR = 0.0
    c.TRAIN.LR_SCALE_BATCH = 0  # >0: LR, MIN_LR and WARMUP_START_LR are per this batch (lr x BATCH_SIZE x ACCUM / it)
    c.TRAIN.BETAS = [0.9, 0.999]  # adam / adamw
    c.TRAIN.LAYER_DECAY = 1.0  # <1: layer-wise lr decay and no weight decay on 1-D params/embeddings (ViT only)
    c.TRAIN.LABEL_SMOOTHING = 0.0
    c.TRAIN.MIXUP = 0.0  # MixUp alpha (0 = off)
    c.TRAIN.CUTMIX = 0.0  # CutMix alpha (0 = off)
    c.TRAIN.MIXUP_SWITCH_PROB = 0.5  # with both on: probability of CutMix for a batch
    c.MODEL.DROP_PATH = 0.0  # stochastic depth of the last block (linear from 0 over the blocks; ViT only)
    c.DATA.RAND_AUGMENT = []  # [magnitude, ops], e.g. [7, 4]; empty = off
    c.DATA.RANDOM_ERASING = 0.0  # per-frame probability
    c.DATA.FLIP = True  # random horizontal flip in training
    c.DATA.TEST_CROPS = 1  # 1 = the centre crop of the SEVERE test; 3 = three crops along the long side


def validate_recipe(cfg: CfgNode) -> None:
    """Value checks of the recipe keys; one clear line per mistake."""
    t = cfg.TRAIN
    checks = [
        (t.SCHEDULE in SCHEDULE_KINDS, f"TRAIN.SCHEDULE must be one of {SCHEDULE_KINDS}, got '{t.SCHEDULE}'"),
        (t.WARMUP_EPOCHS >= 0, f"TRAIN.WARMUP_EPOCHS must be >= 0, got {t.WARMUP_EPOCHS}"),
        (t.LR_SCALE_BATCH >= 0, f"TRAIN.LR_SCALE_BATCH must be >= 0, got {t.LR_SCALE_BATCH}"),
        (len(t.BETAS) == 2, f"TRAIN.BETAS needs two values, got {list(t.BETAS)}"),
        (0.0 < t.LAYER_DECAY <= 1.0, f"TRAIN.LAYER_DECAY must be in (0, 1], got {t.LAYER_DECAY}"),
        (0.0 <= t.LABEL_SMOOTHING < 1.0, f"TRAIN.LABEL_SMOOTHING must be in [0, 1), got {t.LABEL_SMOOTHING}"),
        (t.MIXUP >= 0 and t.CUTMIX >= 0, f"TRAIN.MIXUP and TRAIN.CUTMIX must be >= 0, got {t.MIXUP} / {t.CUTMIX}"),
        (0.0 <= t.MIXUP_SWITCH_PROB <= 1.0, f"TRAIN.MIXUP_SWITCH_PROB must be in [0, 1], got {t.MIXUP_SWITCH_PROB}"),
        (0.0 <= cfg.MODEL.DROP_PATH < 1.0, f"MODEL.DROP_PATH must be in [0, 1), got {cfg.MODEL.DROP_PATH}"),
        (len(cfg.DATA.RAND_AUGMENT) in (0, 2), f"DATA.RAND_AUGMENT must be [] or [magnitude, ops], got {list(cfg.DATA.RAND_AUGMENT)}"),
        (0.0 <= cfg.DATA.RANDOM_ERASING <= 1.0, f"DATA.RANDOM_ERASING must be in [0, 1], got {cfg.DATA.RANDOM_ERASING}"),
        (cfg.DATA.TEST_CROPS in (1, 3), f"DATA.TEST_CROPS must be 1 or 3, got {cfg.DATA.TEST_CROPS}"),
        (cfg.DATA.TEST_CROPS == 1 or cfg.DATA.TEST_RESIZE >= cfg.DATA.CROP,
         f"DATA.TEST_CROPS 3 needs DATA.TEST_RESIZE ({cfg.DATA.TEST_RESIZE}) >= DATA.CROP ({cfg.DATA.CROP})"),
    ]
    for ok, message in checks:
        if not ok:
            raise SevereError(message)


# ------------------------------------------------------------------------------------------- recipes

@dataclass(frozen=True)
class Recipe:
    """A family recipe: ``every_mode`` settings apply to finetune, linear and kNN runs (input geometry, test views),
    ``finetune`` settings to finetuning only; ``datasets`` adds per-dataset settings (every mode)."""

    name: str
    why: str
    every_mode: dict[str, Any]
    finetune: dict[str, Any]
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settings(self, dataset: str, mode: str, frames: int) -> dict[str, Any]:
        out = {"TRAIN.RECIPE": self.name, "DATA.NUM_FRAMES": frames, **self.every_mode}
        if mode == "finetune":
            out.update(self.finetune)
        out.update(self.datasets.get(dataset, {}))
        if mode != "finetune":
            out.pop("DATA.FLIP", None)
        return out


VIDEOMAE = Recipe(
    name="videomae",
    why="ViT backbone: VideoMAE finetuning recipe (SEVERE++ has not published its ViT settings; inferred, "
        "docs/protocol.md §15)",
    every_mode={"DATA.FPS": 7.5, "DATA.CROP": 224, "DATA.TEST_RESIZE": 224, "DATA.TEST_CROPS": 3,
                "DATA.TEST_CLIPS": 5, "DATA.MEAN": [], "DATA.STD": []},  # normalisation: the checkpoint's
    finetune={"TRAIN.OPTIMIZER": "adamw", "TRAIN.BETAS": [0.9, 0.999], "TRAIN.WEIGHT_DECAY": 0.05, "TRAIN.LR": 1e-3,
              "TRAIN.LR_SCALE_BATCH": 256, "TRAIN.LAYER_DECAY": 0.75, "TRAIN.SCHEDULE": "warmup_cosine",
              "TRAIN.WARMUP_EPOCHS": 5, "TRAIN.WARMUP_START_LR": 1e-6, "TRAIN.MIN_LR": 1e-6,
              "MODEL.DROP_PATH": 0.1, "TRAIN.LABEL_SMOOTHING": 0.1, "TRAIN.MIXUP": 0.8, "TRAIN.CUTMIX": 1.0,
              "TRAIN.MIXUP_SWITCH_PROB": 0.5, "DATA.RAND_AUGMENT": [7, 4], "DATA.RANDOM_ERASING": 0.25,
              "DATA.COLOR_JITTER": False, "DATA.TRAIN_CROP_SCALE": [0.08, 1.0], "DATA.TRAIN_SHORT_SIDE": []},
    datasets={"ssv2": {"DATA.FLIP": False, "DATA.TEST_CLIPS": 2},
              # EK-100's verb + noun objective trains on hard labels; a ViT has no BatchNorm to freeze or recompute
              "ek100": {"TRAIN.LABEL_SMOOTHING": 0.0, "TRAIN.MIXUP": 0.0, "TRAIN.CUTMIX": 0.0,
                        "TRAIN.FREEZE_BN_STATS": False, "TRAIN.PRECISE_BN_BATCHES": 0}},
)

RECIPES: dict[str, Recipe] = {VIDEOMAE.name: VIDEOMAE}
#: backbone family -> its recipe (families not listed keep the experiment configs: the CNN protocol)
FAMILY_RECIPES: dict[str, str] = {family: VIDEOMAE.name for family in VIT_FAMILIES}


def run_arch(method: str, cfg_arch: str) -> str | None:
    """The architecture a run will use: MODEL.ARCH, else the method table's (None for an unknown one)."""
    if cfg_arch:
        return cfg_arch
    spec = METHODS.get(method)
    return spec.arch if spec is not None else None


def recipe_rules(method: str, arch: str | None, dataset: str, mode: str) -> list[InitRule]:
    """The family recipe of ``arch`` as a protocol exception (empty for CNN families and unknown architectures)."""
    spec = BACKBONES.get(arch) if arch else None
    if spec is None or spec.family not in FAMILY_RECIPES:
        return []
    recipe = RECIPES[FAMILY_RECIPES[spec.family]]
    return [InitRule(method, recipe.settings(dataset, mode, spec.default_frames), recipe.why, modes=(mode,))]


def recipe_record(cfg: CfgNode) -> dict:
    """What results.json records of the recipe a run used."""
    keys = ("SCHEDULE", "WARMUP_EPOCHS", "WARMUP_START_LR", "MIN_LR", "LR_SCALE_BATCH", "BETAS", "LAYER_DECAY",
            "LABEL_SMOOTHING", "MIXUP", "CUTMIX", "MIXUP_SWITCH_PROB", "OPTIMIZER", "LR", "WEIGHT_DECAY")
    return {"name": cfg.TRAIN.RECIPE, "inferred": cfg.TRAIN.RECIPE != "severe",
            "doc": "docs/protocol.md §15" if cfg.TRAIN.RECIPE != "severe" else "docs/protocol.md §1",
            "train": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k in keys for v in [cfg.TRAIN[k]]},
            "drop_path": cfg.MODEL.DROP_PATH, "rand_augment": list(cfg.DATA.RAND_AUGMENT),
            "random_erasing": cfg.DATA.RANDOM_ERASING, "flip": cfg.DATA.FLIP, "test_crops": cfg.DATA.TEST_CROPS,
            "test_clips": cfg.DATA.TEST_CLIPS, "num_frames": cfg.DATA.NUM_FRAMES, "fps": cfg.DATA.FPS,
            "crop": cfg.DATA.CROP}


def warmup_epochs(cfg: CfgNode) -> float:
    """TRAIN.WARMUP_EPOCHS, shortened to TRAIN.EPOCHS for a run shorter than the warm-up (a deviation line says so)."""
    return min(float(cfg.TRAIN.WARMUP_EPOCHS), float(cfg.TRAIN.EPOCHS))


def effective_lr(lr: float, batch_size: int, accum_steps: int, scale_batch: int) -> float:
    """``lr`` as configured, or with TRAIN.LR_SCALE_BATCH > 0: ``lr x batch x accum / scale_batch``."""
    return lr * batch_size * accum_steps / scale_batch if scale_batch else lr


def set_drop_path(backbone: nn.Module, rate: float) -> int:
    """Stochastic depth rising linearly from 0 (first block) to ``rate`` (last), as the ViT builders do; returns
    the number of blocks. A backbone without per-block ``DropPath`` modules is a SevereError."""
    from severe.models.vit_common import DropPath, drop_path_rates

    paths = [m for m in backbone.modules() if isinstance(m, DropPath)]
    if not paths:
        raise SevereError(f"MODEL.DROP_PATH={rate}: backbone '{getattr(backbone, 'arch', '?')}' has no stochastic-depth "
                          "blocks; set MODEL.DROP_PATH 0")
    for p, r in zip(paths, drop_path_rates(rate, len(paths))):
        p.p = r
    return len(paths)
