"""The recognition config schema (defaults = SEVERE's UCF101 finetuning row, docs/protocol.md §2) and the
per-initialisation protocol exceptions (docs/protocol.md §3; the rules live in the method table,
:mod:`severe.checkpoints.methods`), applied from the checkpoint's method."""

from __future__ import annotations

from fvcore.common.config import CfgNode

from severe.checkpoints.methods import PROTOCOL_RULES, InitRule
from severe.errors import SevereError
from severe.experiments import FACTORS
from severe.recognition.recipes import add_recipe_keys

MODES = ("finetune", "linear", "knn")


def recognition_defaults() -> CfgNode:
    """The base schema (severe.tasks.schema) extended with the recognition keys."""
    from severe.tasks.schema import base_defaults

    c = base_defaults()
    c.EXPERIMENT.ID = ""  # e.g. "ucf101_1000"; names the run and the table column
    c.EXPERIMENT.FACTOR = "domain"  # domain | samples | granularity | linear | task
    c.EXPERIMENT.TASK = "classification"  # classification | arrow_of_time
    c.DATA.DATASET = "ucf101"
    c.DATA.NUM_EXAMPLES = 0  # N-example training subset (docs/protocol.md §6); 0 = the full training list
    c.DATA.VAL_FRACTION = 0.0  # >0: hold out this fraction of each class's training videos (seeded) as a
    # validation split, evaluated (dense protocol) after every epoch and logged; never used to pick the model
    c.DATA.NUM_FRAMES = 32  # T, frames per clip on the FPS timeline
    c.DATA.FPS = 16.0
    c.DATA.CROP = 112
    c.DATA.TRAIN_CROP_SCALE = [0.08, 1.0]  # RandomResizedCrop area fraction (docs/protocol.md §1.4)
    c.DATA.TRAIN_SHORT_SIDE = []  # [low, high]: short-side jitter + random CROP crop instead of RandomResizedCrop (EK-100)
    c.DATA.COLOR_JITTER = True  # brightness/contrast/saturation 0.4, hue 0.2, always applied (docs/protocol.md §1.4)
    c.DATA.MEAN = []  # task normalisation constants; empty = the checkpoint's convention (ImageNet). TCLR's wins.
    c.DATA.STD = []
    c.DATA.TEST_RESIZE = 128  # short side before the test centre crop
    c.DATA.TRAIN_CLIPS_PER_VIDEO = 10  # K: an epoch visits every training video K times (docs/protocol.md §1.3)
    c.DATA.TEST_CLIPS = 10  # dense test: uniformly spaced clips per video, softmax averaged
    c.DATA.NUM_WORKERS = 4
    c.DATA.ALLOW_MISSING = False  # allow training/test lists with missing media (counted and recorded)
    c.DATA.ALLOW_TEST_FAILURES = False  # allow undecodable test videos (reported, excluded from metrics)
    c.MODEL.NOUN_HEAD = 0  # EK-100: >0 adds an auxiliary noun classifier with this many classes; the training loss
    # is the mean of the verb and noun cross-entropies; the test scores verbs only
    c.MODEL.HEAD_INIT = "default"  # default (PyTorch Linear init) | normal (N(0, 0.01), zero bias)
    c.MODEL.DROPOUT = 0.0
    c.MODEL.NUM_CLASSES = 0  # classifier outputs; 0 = the dataset's official class count. A smaller label space
    # (a custom dataset written in an official layout, e.g. the demo's source domain) must hold every label
    c.TRAIN.MODE = "finetune"  # finetune | linear | knn
    c.TRAIN.BATCH_SIZE = 32  # global batch over all processes
    c.TRAIN.EPOCHS = 16
    c.TRAIN.OPTIMIZER = "adam"  # adam (coupled L2) | sgd
    c.TRAIN.MOMENTUM = 0.9  # sgd only
    c.TRAIN.NESTEROV = False  # sgd only
    c.TRAIN.LR = 1e-4
    c.TRAIN.MILESTONES = [6, 10, 14]
    c.TRAIN.GAMMA = 0.3
    c.TRAIN.WEIGHT_DECAY = 0.0
    c.TRAIN.BN_WEIGHT_DECAY = -1.0  # weight decay of BatchNorm weights and biases; < 0: TRAIN.WEIGHT_DECAY (EK-100: 0)
    c.TRAIN.ACCUM_STEPS = 1
    c.TRAIN.AMP = "off"  # off | bf16 | fp16 (CUDA only)
    c.TRAIN.CHANNELS_LAST = False  # channels_last_3d (CUDA only)
    c.TRAIN.COMPILE = False  # torch.compile (CUDA only)
    c.TRAIN.FREEZE_BN_STATS = False  # BatchNorm keeps its running statistics during finetuning (EK-100's BN.FREEZE)
    c.TRAIN.PRECISE_BN_BATCHES = 0  # >0: recompute BN statistics from this many training batches before testing
    c.TRAIN.CHECKPOINT_EVERY = 0  # keep a copy every N epochs (the last epoch is always kept)
    c.TRAIN.TENSORBOARD = False
    c.TEST.BATCH_SIZE = 2  # videos per evaluation batch (each holds TEST_CLIPS clips)
    c.KNN = CfgNode()
    c.KNN.K = 20
    c.KNN.TEMPERATURE = 0.07
    c.SEED = 100  # one seed for python, numpy, torch, loader workers and subsets
    add_recipe_keys(c)  # ViT recipe keys (severe.recognition.recipes); their defaults change nothing
    return c


def init_overrides(method: str, dataset: str, mode: str, num_examples: int) -> list[InitRule]:
    """The protocol exceptions of ``method`` (its rows of the method table) that apply to this run."""
    return [r for r in PROTOCOL_RULES.get(method, ()) if r.applies(method, dataset, mode, num_examples)]


def flatten_settings(rules: list[InitRule]) -> list[str]:
    out: list[str] = []
    for rule in rules:
        for key, value in rule.settings.items():
            out += [key, repr(value) if not isinstance(value, str) else value]
    return out


def validate(cfg: CfgNode) -> None:
    """Value checks the type system cannot express; one clear line per mistake."""
    checks = [
        (cfg.EXPERIMENT.FACTOR in FACTORS, f"EXPERIMENT.FACTOR must be one of {FACTORS}, got '{cfg.EXPERIMENT.FACTOR}'"),
        (cfg.EXPERIMENT.TASK in ("classification", "arrow_of_time"), f"EXPERIMENT.TASK must be classification or arrow_of_time, got '{cfg.EXPERIMENT.TASK}'"),
        (cfg.TRAIN.MODE in MODES, f"TRAIN.MODE must be one of {MODES}, got '{cfg.TRAIN.MODE}'"),
        (cfg.TRAIN.OPTIMIZER in ("adam", "adamw", "sgd"),
         f"TRAIN.OPTIMIZER must be adam, adamw or sgd, got '{cfg.TRAIN.OPTIMIZER}'"),
        (len(cfg.DATA.MEAN) == len(cfg.DATA.STD) and len(cfg.DATA.MEAN) in (0, 3),
         f"DATA.MEAN and DATA.STD must both be empty or both have 3 values, got {list(cfg.DATA.MEAN)} / {list(cfg.DATA.STD)}"),
        (cfg.MODEL.HEAD_INIT in ("default", "normal"), f"MODEL.HEAD_INIT must be default or normal, got '{cfg.MODEL.HEAD_INIT}'"),
        (cfg.TRAIN.AMP in ("off", "bf16", "fp16"), f"TRAIN.AMP must be off, bf16 or fp16, got '{cfg.TRAIN.AMP}'"),
        (cfg.DATA.NUM_EXAMPLES >= 0, f"DATA.NUM_EXAMPLES must be >= 0, got {cfg.DATA.NUM_EXAMPLES}"),
        (len(cfg.DATA.TRAIN_SHORT_SIDE) == 0 or (len(cfg.DATA.TRAIN_SHORT_SIDE) == 2
                                                  and 0 < cfg.DATA.TRAIN_SHORT_SIDE[0] <= cfg.DATA.TRAIN_SHORT_SIDE[1]),
         f"DATA.TRAIN_SHORT_SIDE must be [] or [low, high] with 0 < low <= high, got {list(cfg.DATA.TRAIN_SHORT_SIDE)}"),
        (cfg.TRAIN.PRECISE_BN_BATCHES >= 0, f"TRAIN.PRECISE_BN_BATCHES must be >= 0, got {cfg.TRAIN.PRECISE_BN_BATCHES}"),
        (cfg.TRAIN.MODE == "finetune" or not (cfg.TRAIN.FREEZE_BN_STATS or cfg.TRAIN.PRECISE_BN_BATCHES),
         "TRAIN.FREEZE_BN_STATS and TRAIN.PRECISE_BN_BATCHES apply to finetuning only (a linear probe or kNN "
         "keeps the backbone's statistics)"),
        (cfg.MODEL.NOUN_HEAD == 0 or (cfg.DATA.DATASET == "ek100" and cfg.MODEL.NOUN_HEAD > 0 and cfg.TRAIN.MODE != "knn"),
         f"MODEL.NOUN_HEAD={cfg.MODEL.NOUN_HEAD}: an auxiliary noun head exists for ek100 in finetune or linear mode "
         "only; set it to 0"),
        (0.0 <= cfg.DATA.VAL_FRACTION < 1.0, f"DATA.VAL_FRACTION must be in [0, 1), got {cfg.DATA.VAL_FRACTION}"),
        (cfg.DATA.VAL_FRACTION == 0.0 or cfg.TRAIN.MODE != "knn",
         "DATA.VAL_FRACTION needs a trained mode (finetune or linear); kNN has no epochs to validate"),
        (cfg.DATA.NUM_FRAMES > 0 and cfg.DATA.TEST_CLIPS > 0 and cfg.DATA.TRAIN_CLIPS_PER_VIDEO > 0,
         "DATA.NUM_FRAMES, DATA.TEST_CLIPS and DATA.TRAIN_CLIPS_PER_VIDEO must be positive"),
        (cfg.TRAIN.EPOCHS > 0 and cfg.TRAIN.BATCH_SIZE > 0, "TRAIN.EPOCHS and TRAIN.BATCH_SIZE must be positive"),
        (list(cfg.TRAIN.MILESTONES) == sorted(cfg.TRAIN.MILESTONES), f"TRAIN.MILESTONES must be increasing, got {list(cfg.TRAIN.MILESTONES)}"),
        (cfg.EXPERIMENT.ID != "", "EXPERIMENT.ID is empty: name the experiment in the config"),
    ]
    for ok, message in checks:
        if not ok:
            raise SevereError(message)
