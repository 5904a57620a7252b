"""The pretraining methods: one table (docs/checkpoints.md §5, docs/protocol.md §3).

Every row says where the backbone lives (container key, prefix without the optional ``module.``),
how its names map onto torchvision's, which architecture it targets, its input convention, the
fingerprint that recognises a file of that layout and its auto-detection priority, the method's
recognition protocol exceptions, its synthetic checkpoint layout and its per-task notes. The rows are
in the report's row order (after ``scratch``, which has protocol exceptions but no checkpoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from severe.checkpoints.tc_layouts import i3d_names, r3d_names
from severe.synth import layouts

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


# ----------------------------------------------------------------------------- renaming

def identity(name: str) -> str:
    return name


_NUMBERED = {"0": "stem", "1": "layer1", "2": "layer2", "3": "layer3", "4": "layer4"}


def numbered_stages(name: str) -> str:
    """PCL / RSPNet ``base_network``: first component 0 -> stem, 1-4 -> layer1-layer4."""
    head, _, rest = name.partition(".")
    return f"{_NUMBERED[head]}.{rest}" if head in _NUMBERED else name


# CtP / Tubelet-Contrast module paths -> torchvision module paths (exact, anchored, escaped).
_CTP_MODULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r) for p, r in [
        (r"stem\.conv_s", "stem.0"),
        (r"stem\.bn_s", "stem.1"),
        (r"stem\.conv_t", "stem.3"),
        (r"stem\.bn_t", "stem.4"),
        (r"(layer[1-4]\.\d+\.conv[12])\.conv_s", r"\1.0.0"),
        (r"(layer[1-4]\.\d+\.conv[12])\.bn_s", r"\1.0.1"),
        (r"(layer[1-4]\.\d+\.conv[12])\.conv_t", r"\1.0.3"),
        (r"(layer[1-4]\.\d+)\.bn([12])", r"\1.conv\2.1"),
        (r"(layer[1-4]\.0)\.downsample\.conv", r"\1.downsample.0"),
        (r"(layer[1-4]\.0)\.downsample_bn", r"\1.downsample.1"),
    ]
]


def ctp_names(name: str) -> str:
    """CtP naming (``stem.conv_s``, ``layerL.B.bn1``, ``downsample_bn`` ...) -> torchvision naming."""
    module, _, param = name.rpartition(".")
    for pattern, repl in _CTP_MODULES:
        if pattern.fullmatch(module):
            return f"{pattern.sub(repl, module)}.{param}"
    return name


# ----------------------------------------------------------------------------- fingerprints

def tensors_of(obj: Any, container: str | None) -> dict[str, torch.Tensor] | None:
    """The tensor entries of ``obj[container]`` (or of ``obj`` itself), None if it is not a mapping."""
    node = obj if container is None else (obj.get(container) if isinstance(obj, Mapping) else None)
    if not isinstance(node, Mapping):
        return None
    return {k: v for k, v in node.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def find_prefix(tensors: Mapping[str, torch.Tensor], prefix: str, anchor: str) -> str | None:
    """The actual prefix (``prefix`` or ``module.`` + ``prefix``) under which ``anchor`` exists."""
    for candidate in (prefix, "module." + prefix):
        if candidate + anchor in tensors:
            return candidate
    return None


#: the recognition recipes a per-method rule can name (docs/protocol.md §3): the Adam recipe of the original
#: finetuning / linear-probe code (every recognition dataset but EK-100) and the SGD recipe of its EK-100 code
RECIPES: tuple[str, ...] = ("adam", "ek100")
ADAM = ("adam",)  # the recipes of a rule that changes the Adam recipe only


def recipe_of(dataset: str) -> str:
    """The recipe a recognition run of ``dataset`` follows (the original code base its settings come from)."""
    return "ek100" if dataset == "ek100" else "adam"


@dataclass(frozen=True)
class InitRule:
    """A protocol exception of one initialisation for recognition runs (docs/protocol.md §3): ``settings`` apply
    to runs of ``recipes`` on ``datasets`` (empty = every dataset of those recipes) in ``modes`` with
    ``num_examples`` (empty = any; 0 = the full training list)."""

    method: str
    settings: dict[str, Any]
    why: str
    datasets: tuple[str, ...] = ()  # empty = every dataset
    modes: tuple[str, ...] = ("finetune",)
    num_examples: tuple[int, ...] = field(default=())  # empty = any
    recipes: tuple[str, ...] = ("adam",)  # the recipes whose configs the rule changes (RECIPES)

    def applies(self, method: str, dataset: str, mode: str, num_examples: int) -> bool:
        return (method == self.method and recipe_of(dataset) in self.recipes and mode in self.modes
                and (not self.datasets or dataset in self.datasets)
                and (not self.num_examples or num_examples in self.num_examples))


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    expected_file: str  # under checkpoints_pretraining/
    origin: str
    containers: tuple[str | None, ...]  # where the backbone dict lives (None = top level)
    prefix: str  # selects the backbone; a leading "module." is always optional
    anchor: str  # source name (after the prefix) of the stem's first conv: must exist
    rename: Callable[[str], str] = identity
    arch: str = "r2plus1d_18"
    normalize: dict | None = field(default_factory=lambda: dict(IMAGENET))
    channel_order: str = "RGB"
    extra_meta: dict = field(default_factory=dict)
    extra_check: Callable[[Any, Mapping[str, torch.Tensor]], bool] = lambda obj, t: True
    also_accepts: tuple[str, ...] = ()  # methods with an identical layout
    detect: int | None = None  # auto-detection priority, lower first (docs/checkpoints.md §2.5): specific layouts
    # before generic ones; None = never detected by its layout (identical to another method's)
    rules: tuple[InitRule, ...] = ()  # recognition protocol exceptions (docs/protocol.md §3)
    synthetic: Callable[[layouts.Weights], tuple[Any, Any]] | None = None  # writes a file of this layout
    task_notes: dict[str, str] = field(default_factory=dict)  # task -> what a run of this method does differently
    pretraining_data: tuple[str, ...] = ()  # the release's pretraining datasets, main one first; a folder of that
    # name in the file's path (or ``--pretraining-data``) selects the one recorded in meta['pretraining_data']
    extra_files: dict[str, str] = field(default_factory=dict)  # further releases in this layout:
    # file under checkpoints_pretraining/ -> name of its converted file (``severe convert --all``)

    def locate(self, obj: Any) -> tuple[str | None, dict[str, torch.Tensor], str] | None:
        """(container, its tensors, actual prefix) if the file has this method's layout, else None."""
        for container in self.containers:
            tensors = tensors_of(obj, container)
            if tensors is None:
                continue
            prefix = find_prefix(tensors, self.prefix, self.anchor)
            if prefix is not None and self.extra_check(obj, tensors):
                return container, tensors, prefix
        return None


def _tclr_layer4(obj: Any, tensors: Mapping[str, torch.Tensor]) -> bool:
    return any(
        k.endswith("layer4.0.conv1.0.weight") and v.ndim == 5 and tuple(v.shape[2:]) == (3, 3, 3)
        for k, v in tensors.items()
    )


def _has_key_encoder(tensors: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("key_encoder.", "module.key_encoder.")) for k in tensors)


_SELAVI_HEAD = re.compile(r"(module\.)?mlp_[va]\d+\.")


def _selavi_marks(obj: Any, tensors: Mapping[str, torch.Tensor]) -> bool:
    return "selflabels" in obj or any(_SELAVI_HEAD.match(k) for k in tensors)


#: the scratch initialisation: no checkpoint, its own schedules on the full training lists; N-example subsets
#: keep their config's plain schedule, as the original's sample-size scripts did (docs/protocol.md §3)
SCRATCH = "scratch"
_SCRATCH_LONG = {"TRAIN.EPOCHS": 20, "TRAIN.MILESTONES": [10, 15, 18], "TRAIN.WEIGHT_DECAY": 1e-4}
SCRATCH_RULES: tuple[InitRule, ...] = (
    InitRule(SCRATCH, _SCRATCH_LONG, "scratch schedule (ucf101/hmdb51/gym99/gym288)",
             ("ucf101", "hmdb51", "gym99", "gym288"), num_examples=(0,), recipes=ADAM),
    InitRule(SCRATCH, {"TRAIN.EPOCHS": 25, "TRAIN.MILESTONES": [12, 19, 22], "TRAIN.WEIGHT_DECAY": 1e-4},
             "scratch schedule (ssv2)", ("ssv2",), num_examples=(0,), recipes=ADAM),
    InitRule(SCRATCH, {"TRAIN.EPOCHS": 18, "TRAIN.MILESTONES": [7, 12, 16], "TRAIN.WEIGHT_DECAY": 1e-5},
             "scratch schedule (FineGym FX-S1/UB-S1)", ("gym_fx_s1", "gym_ub_s1"), num_examples=(0,),
             recipes=ADAM),
)

#: the original's I3D finetuning configs (ucf101, hmdb51, diving48; full training sets): 224 crops, so the test
#: resize is int(224 / 0.875) = 256, 17 epochs at milestones 6/12/15, weight decay 1e-4; classifier dropout 0.5
#: (its ucf101/hmdb51 scripts; no diving48 I3D command exists, so there it is inferred) - docs/protocol.md §3
_TC_I3D_RECIPE = {"DATA.CROP": 224, "DATA.TEST_RESIZE": 256, "TRAIN.EPOCHS": 17, "TRAIN.MILESTONES": [6, 12, 15],
                  "TRAIN.WEIGHT_DECAY": 1e-4, "MODEL.DROPOUT": 0.5}

METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec(
        "supervised", "Supervised Kinetics-400 (torchvision)", "fully_supervised_kinetics/r2plus1d_18-91a641e6.pth",
        "torchvision R2Plus1D_18_Weights.KINETICS400_V1 release", (None,), "", "stem.0.weight",
        extra_meta={"note": "trained with Kinetics mean/std; SEVERE feeds ImageNet statistics (faithful)"},
        detect=11, synthetic=layouts.supervised,
    ),
    MethodSpec(
        "selavi", "SeLaVi", "selavi/selavi_kinetics.pth", "authors' release",
        ("model",), "video_network.base.", "stem.0.weight", extra_check=_selavi_marks,
        detect=7, synthetic=layouts.selavi,
    ),
    MethodSpec(
        "moco", "MoCo (video)", "moco/checkpoint_0199.pth.tar", "VideoMoCo authors' release",
        ("state_dict",), "encoder_q.", "stem.0.weight", also_accepts=("video_moco",),
        detect=9, synthetic=layouts.moco,
    ),
    MethodSpec(
        "video_moco", "VideoMoCo", "video_moco/r2plus1D_checkpoint_0199.pth.tar", "authors' release",
        ("state_dict",), "encoder_q.", "stem.0.weight", also_accepts=("moco",),
        synthetic=layouts.video_moco,  # detected as moco (same layout); the file name tells them apart
    ),
    MethodSpec(
        "pretext_contrast", "Pretext-Contrast (PCL)", "pretext_contrast/pcl_r2p1d_res_ssl.pt", "authors' release",
        (None,), "base_network.", "0.0.weight", rename=numbered_stages,
        extra_meta={"note": "pretrained on residual frames; SEVERE feeds RGB with ImageNet statistics (faithful)"},
        detect=10, synthetic=layouts.pretext_contrast,
    ),
    MethodSpec(
        "rspnet", "RSPNet", "rspnet/snellius_checkpoint_epoch_200.pth.tar", "re-pretrained by the SEVERE authors",
        ("model",), "encoder_q.encoder.base_network.", "0.0.weight", rename=numbered_stages,
        detect=5, synthetic=layouts.rspnet,
    ),
    MethodSpec(
        "avid_cma", "AVID-CMA", "avid_cma/avid_cma_ckpt-ep20.pth.tar", "re-pretrained by the SEVERE authors",
        ("model",), "video_model.", "stem.0.weight",
        detect=6, synthetic=layouts.avid_cma,
        rules=(InitRule("avid_cma", {"TRAIN.LR": 1e-3}, "AVID-CMA finetunes with lr 1e-3 (docs/protocol.md §3)",
                        recipes=ADAM),),  # not EK-100: every method ran at that recipe's own lr
    ),
    MethodSpec(
        "ctp", "CtP (Catch-the-Patch)", "ctp/snellius_r2p1d18_ctp_k400_epoch_90.pth", "SEVERE-hosted file",
        ("state_dict",), "backbone.", "stem.conv_s.weight", rename=ctp_names,
        extra_meta={"bn_eps_pretraining": 0.001},
        extra_check=lambda obj, t: not _has_key_encoder(t),
        detect=1, synthetic=layouts.ctp,
    ),
    MethodSpec(
        "tubelet_contrast", "Tubelet-Contrast", "tubelet_contrast/kinetics-400/r2+1d/epoch_100.pth", "authors' release",
        ("state_dict",), "backbone.", "stem.conv_s.weight", rename=ctp_names,
        extra_meta={"bn_eps_pretraining": 0.001},
        extra_check=lambda obj, t: _has_key_encoder(t),
        detect=2, synthetic=layouts.tubelet_contrast,
        rules=(InitRule("tubelet_contrast", {"TRAIN.EPOCHS": 18, "TRAIN.MILESTONES": [8, 13, 16]},
                        "Tubelet-Contrast 1000-sample schedule", ("ucf101", "gym99"), num_examples=(1000,),
                        recipes=ADAM),),
        pretraining_data=("kinetics-400", "mini-kinetics"),
        extra_files={"tubelet_contrast/mini-kinetics/r2+1d/epoch_100.pth": "tubelet_contrast_mini-kinetics"},
    ),
    MethodSpec(
        "tubelet_contrast_r3d", "Tubelet-Contrast (R3D-18)", "tubelet_contrast/kinetics-400/r3d/epoch_100.pth",
        "authors' release", ("state_dict",), "backbone.", "stem.conv.weight", rename=r3d_names, arch="r3d_18",
        extra_meta={"bn_eps_pretraining": 0.001},
        detect=3, synthetic=layouts.tubelet_contrast_r3d, pretraining_data=("kinetics-400",),
    ),
    MethodSpec(
        "tubelet_contrast_i3d", "Tubelet-Contrast (I3D)", "tubelet_contrast/kinetics-400/i3d/epoch_100.pth",
        "authors' release", ("state_dict",), "backbone.", "conv3d_1a_7x7.conv3d.weight", rename=i3d_names, arch="i3d",
        detect=4, synthetic=layouts.tubelet_contrast_i3d, pretraining_data=("kinetics-400",),
        rules=(InitRule("tubelet_contrast_i3d", _TC_I3D_RECIPE, "Tubelet-Contrast I3D recipe (crop 224, 17 epochs, "
                        "dropout 0.5)", ("ucf101", "hmdb51", "diving48"), num_examples=(0,),
                        recipes=ADAM),),
    ),
    MethodSpec(
        "tclr", "TCLR", "tclr/rpd18kin400.pth", "authors' release (modified layer4)",
        ("state_dict",), "0.", "stem.0.weight", arch="r2plus1d_18_tclr", normalize=None, channel_order="BGR",
        extra_check=_tclr_layer4,
        detect=0, synthetic=layouts.tclr,
        rules=(InitRule("tclr", {"DATA.NUM_FRAMES": 32}, "TCLR's UCF101 linear probe uses 32-frame clips", ("ucf101",),
                        ("linear",), recipes=ADAM),),
        task_notes={"ava": "TCLR: its own layer4 (the original left layer4.0 random) and temporal pooling over its "
                           "8-step map",
                    "charades": "TCLR: its own layer4 and global pooling over its 8-step map"},
    ),
    MethodSpec(
        "gdt", "GDT", "gdt/gdt_K400.pth", "authors' release",
        ("model", "state_dict"), "video_network.base.", "stem.0.weight",
        extra_check=lambda obj, t: not _selavi_marks(obj, t),
        detect=8, synthetic=layouts.gdt,
    ),
]}

from severe.checkpoints.vit_methods import VIT_METHOD_ROWS  # noqa: E402  (the ViT rows, checkpoints.md §4)
METHODS.update({m.name: m for m in VIT_METHOD_ROWS})

#: auto-detection order (docs/checkpoints.md §2.5), from the table's ``detect`` priorities
DETECTION_ORDER: list[str] = sorted((m.name for m in METHODS.values() if m.detect is not None),
                                    key=lambda name: METHODS[name].detect)
#: the report's row order of the initialisations: scratch, then the table's rows
INIT_ORDER: tuple[str, ...] = (SCRATCH, *METHODS)
#: the recognition protocol exceptions of every initialisation (scratch included)
PROTOCOL_RULES: dict[str, tuple[InitRule, ...]] = {SCRATCH: SCRATCH_RULES,
                                                   **{m.name: m.rules for m in METHODS.values()}}

# Releases that look like a method but cannot be mapped onto torchvision's R(2+1)D-18.
INCOMPATIBLE_RELEASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(^|\.)(conv[2-5]x|spt_conv\d|tmp_conv\d)(\.|$)"),
     "this is FAIR's original AVID-CMA release (stages conv2x..conv5x, spt_conv/tmp_conv blocks, a different "
     "R(2+1)D); it cannot be mapped onto torchvision's R(2+1)D-18. SEVERE used AVID-CMA re-pretrained with the "
     "torchvision backbone: use that file (avid_cma/avid_cma_ckpt-ep20.pth.tar)"),
    (re.compile(r"(^|\.)(conv1\.spatial_conv|conv2\.block1|downsampleconv)(\.|$)"),
     "this is the released RSPNet model (VCOP R(2+1)D with different names and mid channels); it cannot be mapped "
     "onto torchvision's R(2+1)D-18. SEVERE used RSPNet re-pretrained with the torchvision backbone: use that file "
     "(rspnet/snellius_checkpoint_epoch_200.pth.tar)"),
]
