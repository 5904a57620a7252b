"""The ViT pretraining methods: rows of the method table (``VIT_METHOD_ROWS``, appended to
:data:`severe.checkpoints.methods.METHODS`), docs/checkpoints.md §4.

A :class:`ViTMethodSpec` is a :class:`MethodSpec` whose conversion is a key-mapping function of
:mod:`severe.checkpoints.vit_layouts` instead of prefix + rename: ``layout`` for the method's own naming,
``hf_layout`` for files in Hugging Face ``transformers`` naming. ``archs`` are the architectures the method's
files can give (the ViT-B first, then its tiny twin used by synthetic files); the one whose shapes fit is chosen.
``fingerprint`` recognises the method's files for ``--detect`` (run on each candidate container); ViT
fingerprints need ViT-only names (``patch_embed``, ``conv1`` + ``class_embedding``, ``time_embed``), so a CNN
file never matches one, and the CNN rows' anchors (``stem.*``) never match a ViT file.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from severe.checkpoints.methods import IMAGENET, MethodSpec, tensors_of
from severe.checkpoints.vit_layouts import LAYOUTS, Mapped
from severe.errors import SevereError
from severe.models.vit import VIT_ARCHS
from severe.models.vit_common import CLIP_MEAN, CLIP_STD, KINETICS_MEAN, KINETICS_STD
from severe.synth import vit_layouts as synth

Tensors = Mapping[str, torch.Tensor]

SVT_NORM = {"mean": list(KINETICS_MEAN), "std": list(KINETICS_STD)}
CLIP_NORM = {"mean": list(CLIP_MEAN), "std": list(CLIP_STD)}

#: the pooled feature ``backbone.eval()(x)`` returns, per architecture family (recorded in meta['pooled'])
POOLED = {
    "videomae": "fc_norm(mean of all patch tokens)",
    "timesformer": "final norm of the cls token (norm(x)[:, 0])",
    "clip": "ln_post of the class token, 768-d (the 768->512 projection is not applied)",
}

# keys whose presence says "the weights of a ViT are here" (any prefix)
_VIT_ANCHORS = ("patch_embed.proj.weight", "conv1.weight", "patch_embeddings.projection.weight")
_HF_ANCHOR = "patch_embeddings.projection.weight"


def _holds_vit(tensors: Tensors) -> bool:
    """A ViT patch embedding is here: ``patch_embed``/``patch_embeddings``, or a CLIP ``conv1`` next to its
    ``class_embedding`` (a CNN's ``conv1`` never has one)."""
    for key, value in tensors.items():
        if value.ndim < 4:
            continue
        if key.endswith(("patch_embed.proj.weight", _HF_ANCHOR)):
            return True
        if key.endswith("conv1.weight") and key[: -len("conv1.weight")] + "class_embedding" in tensors:
            return True
    return False


def _any(tensors: Tensors, pattern: str) -> bool:
    rx = re.compile(pattern)
    return any(rx.match(k) for k in tensors)


def _kernel_t(tensors: Tensors, key: str) -> int | None:
    value = tensors.get(key)
    return int(value.shape[2]) if value is not None and value.ndim == 5 else None


_M = r"(module\.)?"


@dataclass(frozen=True)
class ViTMethodSpec(MethodSpec):
    layout: str = ""  # key of vit_layouts.LAYOUTS for the method's own naming
    hf_layout: str | None = None  # key of LAYOUTS for transformers naming (None: the method publishes none)
    archs: tuple[str, ...] = ()  # ViT-B first, then its tiny twin (synthetic files)
    fingerprint: Callable[[Tensors], bool] = lambda t: False
    pooled: str = ""  # overrides POOLED[family] in the converted file's meta
    teacher: str | None = None  # the entry that must be present when the file holds a 'student' (SVT: 'teacher')

    @property
    def synthetic_arch(self) -> str:
        """The architecture synthetic files of this layout are written for (the tiny twin: small files)."""
        return self.archs[-1]

    def locate(self, obj: Any) -> tuple[str | None, dict[str, torch.Tensor], str] | None:
        """(container, its tensors, layout) when ``obj`` has this method's fingerprint (``--detect``)."""
        for container in self.containers:
            tensors = tensors_of(obj, container)
            if tensors and _holds_vit(tensors) and self.fingerprint(tensors):
                return container, tensors, self.layout
        return None

    def weights(self, obj: Any, source: str) -> tuple[str | None, dict[str, torch.Tensor]] | None:
        """The first of this method's containers that holds ViT weights (conversion), None if none does."""
        if self.teacher and isinstance(obj, Mapping) and "student" in obj and self.teacher not in obj:
            raise SevereError(f"{source}: the file holds {self.name}'s 'student' but no '{self.teacher}'; the method "
                              f"evaluates and finetunes the {self.teacher}, so a student-only file is not converted")
        for container in self.containers:
            tensors = tensors_of(obj, container)
            if tensors and _holds_vit(tensors):
                return container, tensors
        return None

    def map(self, tensors: Tensors, source: str) -> tuple[str, str, Mapped]:
        """(layout used, arch, mapped weights): tries each of ``archs``; a SevereError names the first failure."""
        hf = any(k.endswith(_HF_ANCHOR) for k in tensors)
        layout = self.hf_layout if hf else self.layout
        if layout is None:
            raise SevereError(f"{source}: the weights are in Hugging Face transformers naming, which {self.name} "
                              f"files do not use; convert the method's original release")
        errors = []
        for arch in self.archs:
            try:
                return layout, arch, LAYOUTS[layout](tensors, arch=arch)
            except SevereError as e:
                errors.append((arch, str(e)))
        width = next((v.shape[0] for k, v in tensors.items() if k.endswith(_VIT_ANCHORS)), None)
        _, why = next(((a, w) for a, w in errors if VIT_ARCHS[a][1]["feature_dim"] == width), errors[0])
        raise SevereError(f"{source} as {self.name}: {why}")

    def meta(self, arch: str, layout: str, mapped: Mapped) -> dict:
        family = VIT_ARCHS[arch][1]["family"]
        return {"pooled": self.pooled or POOLED[family], "source_layout": layout, "fresh": dict(mapped.fresh),
                "tubelet": VIT_ARCHS[arch][1]["temporal_stride"]}


def convert_vit(obj: Any, spec: ViTMethodSpec, source: str
                ) -> tuple["OrderedDict[str, torch.Tensor]", str | None, str, dict, dict[str, int]] | None:
    """(state_dict in the arch's key order, cloned; container; arch; extra meta; dropped groups -> counts), or
    None when none of the method's containers holds ViT weights (the caller says what the file looks like)."""
    found = spec.weights(obj, source)
    if found is None:
        return None
    container, tensors = found
    layout, arch, mapped = spec.map(tensors, source)
    dropped = dict(mapped.dropped)
    if isinstance(obj, Mapping) and container is not None:
        for key in obj:
            if key != container:
                dropped[str(key)] = dropped.get(str(key), 0) + 1
    state = OrderedDict((k, v.detach().clone()) for k, v in mapped.state_dict.items())
    return state, container, arch, spec.meta(arch, layout, mapped), dict(sorted(dropped.items()))


# ----------------------------------------------------------------------------- fingerprints (on one container)

def _svt(t: Tensors) -> bool:
    return _any(t, r"(module\.)?(backbone\.|model\.|backbone\.model\.)?time_embed$|(timesformer\.)?embeddings\.time_embeddings$")


def _umt(t: Tensors) -> bool:
    return (_any(t, _M + r"vision_encoder\.encoder\.patch_embed\.proj\.weight$")
            or _kernel_t(t, "encoder.patch_embed.proj.weight") == 1 or _any(t, _M + r"clip_decoder\."))


def _viclip(t: Tensors) -> bool:
    return _any(t, _M + r"vision_encoder\.conv1\.weight$")


def _clip(t: Tensors) -> bool:
    return _any(t, _M + r"visual\.conv1\.weight$") or ("conv1.weight" in t and "class_embedding" in t)


def _mme(t: Tensors) -> bool:
    return _any(t, _M + r"(encoder|encoder_q\.encoder)\.model\.patch_embed\.proj\.weight$")


def _mgmae(t: Tensors) -> bool:
    return _any(t, _M + r"_orig_mod\.(encoder\.)?patch_embed\.proj\.weight$")


def _mvd(t: Tensors) -> bool:
    return _any(t, _M + r"pos_embed$") and _any(t, _M + r"(decoder_(img|vid)|down_(img|vid)|mask_token_(img|vid))")


def _sigma(t: Tensors) -> bool:
    return _any(t, _M + r"encoder\.patch_embed\.proj\.weight$") and _any(t, _M + r"prototypes")


def _videomae(t: Tensors) -> bool:
    if _any(t, _M + r"encoder\.patch_embed\.proj\.weight$"):  # the pretraining model (encoder + decoder)
        return True
    hf = _any(t, r"(videomae\.)?embeddings\.patch_embeddings\.projection\.weight$")
    return hf and not _any(t, r"classifier\.")  # transformers VideoMAEForPreTraining / VideoMAEModel


def _supervised_vit(t: Tensors) -> bool:
    finetuned = _any(t, _M + r"patch_embed\.proj\.weight$") and _any(t, _M + r"fc_norm\.weight$") \
        and _any(t, _M + r"head\.weight$")
    hf = _any(t, r"videomae\.embeddings\.patch_embeddings\.projection\.weight$") and "classifier.weight" in t
    return finetuned or hf


# ----------------------------------------------------------------------------- the rows

_MAE = ("model", "module", "model_state", None)
_VIDEOMAE_ARCHS = ("vit_b_videomae", "vit_tiny_videomae")

VIT_METHOD_ROWS: list[ViTMethodSpec] = [
    ViTMethodSpec(
        "videomae", "VideoMAE (ViT-B)", "videomae/videomae_vit_b_k400_pretrain.pth", "MCG-NJU/VideoMAE release",
        _MAE, "encoder.", "patch_embed.proj.weight", arch="vit_b_videomae", normalize=dict(IMAGENET),
        layout="videomae", hf_layout="hf_videomae", archs=_VIDEOMAE_ARCHS, fingerprint=_videomae,
        detect=108, synthetic=synth.videomae,
    ),
    ViTMethodSpec(
        "supervised_vit", "Supervised ViT-B (VideoMAE finetuned on K400)", "supervised_vit/videomae_vit_b_k400_ft.pth",
        "MCG-NJU/VideoMAE finetuned release", _MAE, "", "patch_embed.proj.weight", arch="vit_b_videomae",
        layout="supervised_vit", hf_layout="hf_videomae", archs=_VIDEOMAE_ARCHS, fingerprint=_supervised_vit,
        detect=109, synthetic=synth.supervised_vit, also_accepts=("videomae",),
    ),
    ViTMethodSpec(
        "mvd", "MVD (ViT-B)", "mvd/mvd_vit_b_k400.pth", "ruiwang2021/mvd release", _MAE, "", "patch_embed.proj.weight",
        arch="vit_b_mvd", layout="mvd", archs=("vit_b_mvd", "vit_tiny_mvd"), fingerprint=_mvd,
        detect=106, synthetic=synth.mvd,
    ),
    ViTMethodSpec(
        "mgmae", "MGMAE (ViT-B)", "mgmae/mgmae_vit_b_k400.pth", "MCG-NJU/MGMAE release", _MAE, "_orig_mod.encoder.",
        "patch_embed.proj.weight", arch="vit_b_videomae", layout="mgmae", archs=_VIDEOMAE_ARCHS, fingerprint=_mgmae,
        detect=105, synthetic=synth.mgmae, also_accepts=("videomae",),
    ),
    ViTMethodSpec(
        "mme", "MME (ViT-B)", "mme/mme_vit_b_k400.pth", "XinyuSun/MME release", ("model", "module", "model_state", None),
        "encoder.model.", "patch_embed.proj.weight", arch="vit_b_videomae", layout="mme", archs=_VIDEOMAE_ARCHS,
        fingerprint=_mme, detect=104, synthetic=synth.mme,
    ),
    ViTMethodSpec(
        "everest", "EVEREST (ViT-B)", "everest/everest_vit_b_k400.pth", "sunilhoho/EVEREST release", _MAE, "encoder.",
        "patch_embed.proj.weight", arch="vit_b_videomae", layout="everest", archs=_VIDEOMAE_ARCHS,
        fingerprint=_videomae, synthetic=synth.everest, also_accepts=("videomae",),
        # the VideoMAE layout exactly: detected as videomae, the file name tells them apart
    ),
    ViTMethodSpec(
        "sigma", "SIGMA (ViT-B)", "sigma/sigma_vit_b_k400.pth", "QUVA-Lab/SIGMA release", _MAE, "encoder.",
        "patch_embed.proj.weight", arch="vit_b_videomae", layout="sigma", archs=_VIDEOMAE_ARCHS, fingerprint=_sigma,
        detect=107, synthetic=synth.sigma, also_accepts=("videomae",),
    ),
    ViTMethodSpec(
        "umt", "UMT (ViT-B, single-modality or video-text)", "umt/umt_vit_b16_k710.pth", "OpenGVLab/unmasked_teacher",
        _MAE, "encoder.", "patch_embed.proj.weight", arch="vit_b_umt", layout="umt",
        archs=("vit_b_umt", "vit_tiny_umt"), fingerprint=_umt, detect=101, synthetic=synth.umt,
        pooled="fc_norm(mean of all patch tokens); video-text files: their pool_norm, loaded as fc_norm",
    ),
    ViTMethodSpec(
        "viclip", "ViCLIP (ViT-B)", "viclip/viclip_b16.pth", "OpenGVLab/InternVideo (InternVid)", ("model", None),
        "vision_encoder.", "conv1.weight", arch="vit_b_clip", normalize=CLIP_NORM, layout="viclip",
        archs=("vit_b_clip", "vit_tiny_clip"), fingerprint=_viclip, detect=102, synthetic=synth.viclip,
    ),
    ViTMethodSpec(
        "clip", "CLIP ViT-B/16 (image, inflated to video)", "clip/clip_vit_b16.pth", "OpenAI CLIP state dict",
        ("state_dict", "model", None), "visual.", "conv1.weight", arch="vit_b_clip", normalize=CLIP_NORM,
        layout="clip", archs=("vit_b_clip", "vit_tiny_clip"), fingerprint=_clip, detect=103, synthetic=synth.clip,
    ),
    ViTMethodSpec(
        "svt", "SVT (TimeSformer ViT-B)", "svt/kinetics400_vitb_ssl.pth", "kahnchana/svt release",
        ("teacher", "model_state", None, "student"), "backbone.", "patch_embed.proj.weight", arch="vit_b_timesformer",
        normalize=SVT_NORM, layout="svt", hf_layout="hf_timesformer", archs=("vit_b_timesformer", "vit_tiny_timesformer"),
        fingerprint=_svt, detect=100, synthetic=synth.svt, teacher="teacher",
    ),
]


def by_file_name(detected: str, file_name: str) -> str:
    """A ViT row that has ``detected``'s layout exactly (``detect`` None, e.g. everest = videomae) when the path
    names it, else ``detected``: keys cannot tell such files apart."""
    path = file_name.replace("\\", "/").lower()
    for row in VIT_METHOD_ROWS:
        if row.detect is None and detected in row.also_accepts and row.name in path:
            return row.name
    return detected
