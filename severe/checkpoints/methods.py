"""How each pretraining method stores its R(2+1)D-18 on disk: one table (checkpoints.md §5).

Every row says where the backbone lives (container key, prefix without the optional ``module.``),
how its names map onto torchvision's, which architecture it targets, its input convention, and the
fingerprint that recognises a file of that layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

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


METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec(
        "supervised", "Supervised Kinetics-400 (torchvision)", "fully_supervised_kinetics/r2plus1d_18-91a641e6.pth",
        "torchvision R2Plus1D_18_Weights.KINETICS400_V1 release", (None,), "", "stem.0.weight",
        extra_meta={"note": "trained with Kinetics mean/std; SEVERE feeds ImageNet statistics (faithful)"},
    ),
    MethodSpec(
        "selavi", "SeLaVi", "selavi/selavi_kinetics.pth", "authors' release",
        ("model",), "video_network.base.", "stem.0.weight", extra_check=_selavi_marks,
    ),
    MethodSpec(
        "moco", "MoCo (video)", "moco/checkpoint_0199.pth.tar", "VideoMoCo authors' release",
        ("state_dict",), "encoder_q.", "stem.0.weight", also_accepts=("video_moco",),
    ),
    MethodSpec(
        "video_moco", "VideoMoCo", "video_moco/r2plus1D_checkpoint_0199.pth.tar", "authors' release",
        ("state_dict",), "encoder_q.", "stem.0.weight", also_accepts=("moco",),
    ),
    MethodSpec(
        "pretext_contrast", "Pretext-Contrast (PCL)", "pretext_contrast/pcl_r2p1d_res_ssl.pt", "authors' release",
        (None,), "base_network.", "0.0.weight", rename=numbered_stages,
        extra_meta={"note": "pretrained on residual frames; SEVERE feeds RGB with ImageNet statistics (faithful)"},
    ),
    MethodSpec(
        "rspnet", "RSPNet", "rspnet/snellius_checkpoint_epoch_200.pth.tar", "re-pretrained by the SEVERE authors",
        ("model",), "encoder_q.encoder.base_network.", "0.0.weight", rename=numbered_stages,
    ),
    MethodSpec(
        "avid_cma", "AVID-CMA", "avid_cma/avid_cma_ckpt-ep20.pth.tar", "re-pretrained by the SEVERE authors",
        ("model",), "video_model.", "stem.0.weight",
    ),
    MethodSpec(
        "ctp", "CtP (Catch-the-Patch)", "ctp/snellius_r2p1d18_ctp_k400_epoch_90.pth", "SEVERE-hosted file",
        ("state_dict",), "backbone.", "stem.conv_s.weight", rename=ctp_names,
        extra_meta={"bn_eps_pretraining": 0.001},
        extra_check=lambda obj, t: not _has_key_encoder(t),
    ),
    MethodSpec(
        "tubelet_contrast", "Tubelet-Contrast", "tubelet_contrast/kinetics-400/r2+1d/epoch_100.pth", "authors' release",
        ("state_dict",), "backbone.", "stem.conv_s.weight", rename=ctp_names,
        extra_meta={"bn_eps_pretraining": 0.001},
        extra_check=lambda obj, t: _has_key_encoder(t),
    ),
    MethodSpec(
        "tclr", "TCLR", "tclr/rpd18kin400.pth", "authors' release (modified layer4)",
        ("state_dict",), "0.", "stem.0.weight", arch="r2plus1d_18_tclr", normalize=None, channel_order="BGR",
        extra_check=_tclr_layer4,
    ),
    MethodSpec(
        "gdt", "GDT", "gdt/gdt_K400.pth", "authors' release",
        ("model", "state_dict"), "video_network.base.", "stem.0.weight",
        extra_check=lambda obj, t: not _selavi_marks(obj, t),
    ),
]}

# Auto-detection order (checkpoints.md §2.5): specific layouts before generic ones.
DETECTION_ORDER = ["tclr", "ctp", "tubelet_contrast", "rspnet", "avid_cma", "selavi", "gdt", "moco",
                   "pretext_contrast", "supervised"]

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
