"""Key mapping of published ViT video checkpoints onto severe's ViT backbones: pure functions.

Each layout function takes the raw tensors of the checkpoint's weight container (a flat ``{name: tensor}``
dict: ``ckpt['model']``, ``ckpt['teacher']`` ...) and returns a :class:`Mapped`: the backbone state dict in
our module names (verified key by key and shape by shape against the architecture, every kept tensor the
source tensor itself), the source groups left out with their entry counts, and the keys initialised fresh
because the source has none (e.g. ``fc_norm`` of a VideoMAE pretraining checkpoint, as VideoMAE's own
finetuning does). Anything inside the backbone's namespace that the architecture cannot represent (layer
scale, a cls token, a learned or different position table, an unexpected parameter) is a one-line
SevereError; parts outside it (decoders, heads, text towers, teachers) are dropped and recorded.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache, partial
from typing import Callable, Mapping, NamedTuple

import torch

from severe.errors import SevereError
from severe.models.vit import VIT_ARCHS, build_vit
from severe.models.vit_common import sincos_3d_table, sinusoid_table

Tensors = Mapping[str, torch.Tensor]


class Mapped(NamedTuple):
    state_dict: dict[str, torch.Tensor]  # our module names, in the architecture's key order
    dropped: dict[str, int]  # source key group -> number of entries left out
    fresh: dict[str, str]  # our key -> how it was initialised (absent from the source)


@lru_cache(maxsize=None)
def arch_key_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Ordered {key: shape} of the named ViT backbone (built on the meta device)."""
    with torch.device("meta"):
        model = build_vit(arch)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _group(key: str, depth: int = 1) -> str:
    """``decoder.blocks.3.mlp.fc1.weight`` -> ``decoder`` (depth 1): how dropped keys are reported."""
    return ".".join(key.split(".")[:depth])


def _strip(tensors: Tensors, prefix: str) -> tuple[dict[str, torch.Tensor], Counter]:
    """(keys under ``prefix`` with it removed, Counter of the other keys' top-level groups)."""
    inside, outside = {}, Counter()
    for key, value in tensors.items():
        if key.startswith(prefix):
            inside[key[len(prefix):]] = value
        else:
            outside[_group(key, 2 if key.count(".") > 1 and key.split(".")[0] in _WRAPPERS else 1)] += 1
    return inside, outside


_WRAPPERS = {"module", "vision_encoder", "encoder_q", "_orig_mod"}


def _prefix_of(tensors: Tensors, anchor: str, candidates: tuple[str, ...], layout: str) -> str:
    for prefix in candidates:
        if prefix + anchor in tensors:
            return prefix
    sample = ", ".join(list(tensors)[:4])
    raise SevereError(f"not a {layout} checkpoint: no '{anchor}' under any of the prefixes "
                      f"{', '.join(repr(p) for p in candidates)} (first keys: {sample})")


def _verify(kept: dict[str, torch.Tensor], arch: str, layout: str) -> dict[str, torch.Tensor]:
    expected = arch_key_shapes(arch)
    missing = [k for k in expected if k not in kept]
    unexpected = [k for k in kept if k not in expected]
    if missing or unexpected:
        parts = ([f"{len(missing)} missing (e.g. {', '.join(missing[:3])})"] if missing else []) + \
                ([f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})"] if unexpected else [])
        raise SevereError(f"{layout} weights do not give an exact {arch}: " + "; ".join(parts))
    for key, shape in expected.items():
        if tuple(kept[key].shape) != shape:
            raise SevereError(f"{layout}: '{key}' has shape {tuple(kept[key].shape)}, expected {shape} for {arch}")
    return {k: kept[k] for k in expected}


# ----------------------------------------------------------------------------- VideoMAE family

# First name components of pretraining-only parts that may sit next to a top-level encoder: MAE decoders
# (VideoMAE, MVD's image/video decoders), their projections, mask tokens and position tables, UMT's CLIP
# decoder, SIGMA's prototypes.
_PRETRAIN_JUNK = re.compile(r"(decoder(_img|_vid)?|encoder_to_decoder|mask_token(_img|_vid)?|down_(img|vid)|"
                            r"pos_embed_(img|vid)|clip_decoder|prototypes)$")

_VIDEOMAE_FORBIDDEN = [
    (re.compile(r"blocks\.\d+\.gamma_[12]$"), "layer scale (gamma_1/gamma_2, init_values > 0) is not part of the "
                                              "ViT-B architecture"),
    (re.compile(r"cls_token$"), "a cls token (use_cls_token) is not part of the mean-pooled architecture"),
    (re.compile(r"blocks\.\d+\.attn\.scale$"), "cosine attention (attn.scale) is not part of the architecture"),
]


def _map_videomae_encoder(enc: dict[str, torch.Tensor], arch: str, layout: str, prefix: str,
                          dropped: Counter, saved_table: str) -> Mapped:
    """Encoder names (``patch_embed``, ``blocks``, ``norm``/``fc_norm``, ``head``, ``pos_embed``) -> Mapped.

    ``saved_table``: which generated table a saved ``pos_embed`` must equal exactly ("sinusoid_1d" or
    "sincos_3d"); the table is then dropped, since the backbone regenerates it bit for bit."""
    for key in enc:
        for pattern, why in _VIDEOMAE_FORBIDDEN:
            if pattern.search(key):
                raise SevereError(f"{layout}: '{prefix}{key}': {why}; this checkpoint cannot be converted exactly")
    kept, fresh = {}, {}
    for key, value in enc.items():
        if key.startswith(("patch_embed.", "blocks.", "fc_norm.")):
            kept[key] = value
        elif key.startswith(("head.", "norm.")) or _PRETRAIN_JUNK.match(key.split(".")[0]):
            dropped[prefix + key.split(".")[0]] += 1
        elif key == "pos_embed":
            _check_saved_table(value, arch, layout, prefix, saved_table)
            dropped[prefix + "pos_embed"] += 1
        else:
            raise SevereError(f"{layout}: unexpected backbone key '{prefix}{key}'; the architecture has no such "
                              f"parameter, so the checkpoint cannot be converted exactly")
    if not any(k.startswith("fc_norm.") for k in kept):
        dim = arch_key_shapes(arch)["fc_norm.weight"][0]
        kept["fc_norm.weight"], kept["fc_norm.bias"] = torch.ones(dim), torch.zeros(dim)
        fresh = {"fc_norm.weight": "ones", "fc_norm.bias": "zeros"}
    return Mapped(_verify(kept, arch, layout), dict(sorted(dropped.items())), fresh)


def _check_saved_table(value: torch.Tensor, arch: str, layout: str, prefix: str, kind: str) -> None:
    dim = arch_key_shapes(arch)["fc_norm.weight"][0]
    table = value.reshape(-1, dim) if value.numel() % dim == 0 else None
    if table is None or table.dtype.is_complex:
        raise SevereError(f"{layout}: '{prefix}pos_embed' has shape {tuple(value.shape)}, not N x {dim}")
    n = table.shape[0]
    if kind == "sincos_3d":
        side = VIT_ARCHS[arch][1]["default_crop"] // 16  # published tables are sized for the default crop
        if n % (side * side):
            raise SevereError(f"{layout}: '{prefix}pos_embed' has {n} positions, not T' x {side} x {side}")
        expected = sincos_3d_table((n // (side * side), side, side), dim)[0]
    else:
        expected = sinusoid_table(n, dim)[0]
    if not torch.equal(table.float(), expected):
        raise SevereError(f"{layout}: the saved '{prefix}pos_embed' ({n} x {dim}) differs from the {kind} table "
                          f"the backbone generates (max difference {(table.float() - expected).abs().max():.3g}); "
                          f"a learned or interpolated position table cannot be converted exactly")



def videomae(tensors: Tensors, arch: str = "vit_b_videomae", layout: str = "videomae",
             saved_table: str = "sinusoid_1d") -> Mapped:
    """VideoMAE (and SIGMA, EVEREST, MGMAE after ``_orig_mod.``, UMT single-modality with ``vit_b_umt``).

    Pretraining layout: ``encoder.*`` (+ ``module.``/``backbone.``); the encoder's final ``norm`` is dropped and
    ``fc_norm`` starts fresh, decoder parts are dropped. Finetuned layout: top-level ``patch_embed``/``blocks``/
    ``fc_norm`` with a ``head`` (dropped)."""
    prefix = _prefix_of(tensors, "patch_embed.proj.weight",
                        ("encoder.", "module.encoder.", "backbone.", "module.backbone.", "", "module."), layout)
    enc, dropped = _strip(tensors, prefix)
    return _map_videomae_encoder(enc, arch, layout, prefix, dropped, saved_table)


def mgmae(tensors: Tensors, arch: str = "vit_b_videomae") -> Mapped:
    """MGMAE: VideoMAE V2 code, possibly saved from a torch.compile'd model (``_orig_mod.`` prefixes)."""
    renamed = {re.sub(r"^(module\.)?_orig_mod\.", r"\1", k): v for k, v in tensors.items()}
    return videomae(renamed, arch, layout="mgmae")


def mvd(tensors: Tensors, arch: str = "vit_b_mvd") -> Mapped:
    """MVD student: top-level VideoMAE names with a saved 3-D sin-cos ``pos_embed`` (verified equal to the one
    the backbone generates, then dropped); image/video decoders, projections and mask tokens dropped."""
    return videomae(tensors, arch, layout="mvd", saved_table="sincos_3d")


def mme(tensors: Tensors, arch: str = "vit_b_videomae") -> Mapped:
    """MME: the encoder under ``encoder.model.`` or ``encoder_q.encoder.model.`` (the MME loader's prefixes)."""
    prefix = _prefix_of(tensors, "patch_embed.proj.weight",
                        ("encoder.model.", "encoder_q.encoder.model.", "module.encoder.model.",
                         "module.encoder_q.encoder.model.", "encoder.", ""), "mme")
    enc, dropped = _strip(tensors, prefix)
    return _map_videomae_encoder(enc, arch, "mme", prefix, dropped, "sinusoid_1d")


def umt(tensors: Tensors, arch: str = "vit_b_umt") -> Mapped:
    """UMT, tubelet 1. Single-modality: ``encoder.*`` (+ ``clip_decoder.*`` dropped) or a finetuned top-level
    layout. Video-text: ``vision_encoder.encoder.*`` with ``vision_encoder.pool_norm`` -> ``fc_norm``; the text
    tower, CLIP teacher, decoders, projections, ``itm_head`` and ``temp`` are dropped."""
    if any(k.startswith(("vision_encoder.encoder.", "module.vision_encoder.encoder.")) for k in tensors):
        outer = _prefix_of(tensors, "encoder.patch_embed.proj.weight", ("vision_encoder.", "module.vision_encoder."),
                           "umt video-text")
        if f"{outer}encoder.norm.weight" in tensors:
            raise SevereError(f"umt video-text: '{outer}encoder.norm.weight' is present; whether this norm is applied "
                              f"to the tokens before pool_norm is not verified, so the conversion would not be exact")
        renamed = {}
        for key, value in tensors.items():
            if key.startswith(outer + "pool_norm."):
                renamed["encoder.fc_norm." + key[len(outer + "pool_norm."):]] = value
            elif key.startswith(outer + "encoder."):
                renamed["encoder." + key[len(outer + "encoder."):]] = value
            else:
                renamed[key] = value
        enc, dropped = _strip(renamed, "encoder.")
        if "fc_norm.weight" not in enc:
            raise SevereError(f"umt video-text: no '{outer}pool_norm.weight'; the pooled feature is pool_norm(mean)")
        return _map_videomae_encoder(enc, arch, "umt video-text", outer + "encoder.", dropped, "sinusoid_1d")
    return videomae(tensors, arch, layout="umt")


# ----------------------------------------------------------------------------- TimeSformer (SVT)

def svt(tensors: Tensors, arch: str = "vit_b_timesformer") -> Mapped:
    """SVT teacher (``backbone.*``; the DINO ``head.*`` dropped) or a TimeSformer ``model.*`` state. Pass the
    ``teacher`` container: a DDP student (``module.backbone.*``) is refused, SVT evaluates the teacher."""
    if any(k.startswith("module.backbone.") for k in tensors):
        raise SevereError("svt: these are student weights (module.backbone.*); SVT evaluates and finetunes the "
                          "teacher: convert the checkpoint's 'teacher' entry")
    prefix = _prefix_of(tensors, "patch_embed.proj.weight", ("backbone.", "model.", "backbone.model.", ""), "svt")
    inner, dropped = _strip(tensors, prefix)
    kept = {}
    for key, value in inner.items():
        if key.startswith("head."):
            dropped[prefix + "head"] += 1
        else:
            kept[key] = value
    return Mapped(_verify(kept, arch, "svt"), dict(sorted(dropped.items())), {})


# ----------------------------------------------------------------------------- CLIP family

def _map_clip_vision(vision: dict[str, torch.Tensor], arch: str, layout: str, prefix: str,
                     dropped: Counter) -> Mapped:
    kept, fresh = {}, {}
    for key, value in vision.items():
        if key == "proj":
            dropped[prefix + "proj"] += 1
        else:
            kept[key] = value
    weight = kept.get("conv1.weight")
    if weight is not None and weight.ndim == 4:  # image CLIP: inflate the 2-D patch kernel to tubelet 1
        kernel_t = arch_key_shapes(arch)["conv1.weight"][2]
        if kernel_t != 1:
            raise SevereError(f"{layout}: a 2-D conv1 can only be inflated exactly to tubelet 1, {arch} has {kernel_t}")
        kept["conv1.weight"] = weight.unsqueeze(2)
    if "temporal_positional_embedding" not in kept:
        kept["temporal_positional_embedding"] = torch.zeros(arch_key_shapes(arch)["temporal_positional_embedding"])
        fresh["temporal_positional_embedding"] = "zeros"
    return Mapped(_verify(kept, arch, layout), dict(sorted(dropped.items())), fresh)


def viclip(tensors: Tensors, arch: str = "vit_b_clip") -> Mapped:
    """ViCLIP: CLIP vision names under ``vision_encoder.``; ``proj`` (768 -> 512), the text encoder and
    ``temp`` dropped."""
    prefix = _prefix_of(tensors, "conv1.weight", ("vision_encoder.", "module.vision_encoder."), "viclip")
    vision, dropped = _strip(tensors, prefix)
    return _map_clip_vision(vision, arch, "viclip", prefix, dropped)


def clip(tensors: Tensors, arch: str = "vit_b_clip") -> Mapped:
    """OpenAI CLIP ViT-B/16 state dict (``visual.*``, or the vision tower alone): the 2-D patch kernel is
    inflated to tubelet 1 (exact), the temporal position embedding starts at zero; ``visual.proj`` and the text
    tower are dropped."""
    prefix = _prefix_of(tensors, "conv1.weight", ("visual.", "module.visual.", ""), "clip")
    vision, dropped = _strip(tensors, prefix)
    return _map_clip_vision(vision, arch, "clip", prefix, dropped)


# ----------------------------------------------------------------------------- Hugging Face transformers naming

_L = r"encoder\.layer\.(\d+)\."
_HF_VIDEOMAE = [(re.compile(p), r) for p, r in [
    (r"embeddings\.patch_embeddings\.projection\.(.+)", r"patch_embed.proj.\1"),
    (_L + r"attention\.attention\.(q_bias|v_bias)", r"blocks.\1.attn.\2"),
    (_L + r"attention\.output\.dense\.(.+)", r"blocks.\1.attn.proj.\2"),
    (_L + r"layernorm_before\.(.+)", r"blocks.\1.norm1.\2"),
    (_L + r"layernorm_after\.(.+)", r"blocks.\1.norm2.\2"),
    (_L + r"intermediate\.dense\.(.+)", r"blocks.\1.mlp.fc1.\2"),
    (_L + r"output\.dense\.(.+)", r"blocks.\1.mlp.fc2.\2"),
    (r"layernorm\.(.+)", r"norm.\1"),
    (r"classifier\.(.+)", r"head.\1"),
]]
_HF_QKV = re.compile(_L + r"attention\.attention\.(query|key|value)\.(weight|bias)")

_HF_TIMESFORMER = [(re.compile(p), r) for p, r in [
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.time_embeddings", "time_embed"),
    (r"embeddings\.patch_embeddings\.projection\.(.+)", r"patch_embed.proj.\1"),
    (_L + r"attention\.attention\.qkv\.(.+)", r"blocks.\1.attn.qkv.\2"),
    (_L + r"attention\.output\.dense\.(.+)", r"blocks.\1.attn.proj.\2"),
    (_L + r"temporal_attention\.attention\.qkv\.(.+)", r"blocks.\1.temporal_attn.qkv.\2"),
    (_L + r"temporal_attention\.output\.dense\.(.+)", r"blocks.\1.temporal_attn.proj.\2"),
    (_L + r"temporal_layernorm\.(.+)", r"blocks.\1.temporal_norm1.\2"),
    (_L + r"temporal_dense\.(.+)", r"blocks.\1.temporal_fc.\2"),
    (_L + r"layernorm_before\.(.+)", r"blocks.\1.norm1.\2"),
    (_L + r"layernorm_after\.(.+)", r"blocks.\1.norm2.\2"),
    (_L + r"intermediate\.dense\.(.+)", r"blocks.\1.mlp.fc1.\2"),
    (_L + r"output\.dense\.(.+)", r"blocks.\1.mlp.fc2.\2"),
    (r"layernorm\.(.+)", r"norm.\1"),
    (r"classifier\.(.+)", r"head.\1"),
]]


def _hf_rename(tensors: Tensors, model_prefix: str, rules) -> dict[str, torch.Tensor]:
    """Strip ``model_prefix`` (``videomae.``/``timesformer.``, absent in a bare ``*Model`` file) and rename
    by the first fully matching rule; other names are returned unchanged."""
    out = {}
    for key, value in tensors.items():
        name = key[len(model_prefix):] if key.startswith(model_prefix) else key
        for pattern, repl in rules:
            if pattern.fullmatch(name):
                name = pattern.sub(repl, name)
                break
        out[name] = value
    return out


def hf_videomae(tensors: Tensors, arch: str = "vit_b_videomae") -> Mapped:
    """``transformers`` VideoMAE (``VideoMAEModel``, ``VideoMAEForPreTraining``, ``...ForVideoClassification``):
    query/key/value weights are concatenated back into ``qkv`` (exact); ``videomae.layernorm`` of a pretraining
    model is dropped and ``fc_norm`` starts fresh, as for the original layout; decoder and classifier dropped."""
    renamed = _hf_rename(tensors, "videomae.", _HF_VIDEOMAE)
    if "patch_embed.proj.weight" not in renamed:
        raise SevereError("not a Hugging Face VideoMAE state dict: no 'videomae.embeddings.patch_embeddings."
                          f"projection.weight' (first keys: {', '.join(list(tensors)[:4])})")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key in [k for k in renamed if _HF_QKV.fullmatch(k)]:
        layer, which, kind = _HF_QKV.fullmatch(key).groups()
        if kind == "bias":
            raise SevereError(f"hf videomae: '{key}' is a full {which} bias; the architecture has q_bias/v_bias only")
        parts.setdefault(layer, {})[which] = renamed.pop(key)
    for layer, qkv in parts.items():
        if set(qkv) != {"query", "key", "value"}:
            raise SevereError(f"hf videomae: layer {layer} has only {sorted(qkv)} of query/key/value weights")
        renamed[f"blocks.{layer}.attn.qkv.weight"] = torch.cat([qkv["query"], qkv["key"], qkv["value"]])
    inner, dropped = {}, Counter()
    for key, value in renamed.items():
        if key.startswith(("decoder.", "encoder_to_decoder.")) or key == "mask_token":
            dropped[key.split(".")[0]] += 1
        elif key.startswith(("head.", "norm.")):
            dropped["classifier" if key.startswith("head.") else "videomae.layernorm"] += 1
        else:
            inner[key] = value
    return _map_videomae_encoder(inner, arch, "hf videomae", "", dropped, "sinusoid_1d")


def hf_timesformer(tensors: Tensors, arch: str = "vit_b_timesformer") -> Mapped:
    """``transformers`` TimeSformer (``TimesformerModel`` / ``...ForVideoClassification``); classifier dropped."""
    renamed = _hf_rename(tensors, "timesformer.", _HF_TIMESFORMER)
    if "patch_embed.proj.weight" not in renamed:
        raise SevereError("not a Hugging Face TimeSformer state dict: no 'timesformer.embeddings.patch_embeddings."
                          f"projection.weight' (first keys: {', '.join(list(tensors)[:4])})")
    kept, dropped = {}, Counter()
    for key, value in renamed.items():
        if key.startswith("head."):
            dropped["classifier"] += 1
        else:
            kept[key] = value
    return Mapped(_verify(kept, arch, "hf timesformer"), dict(sorted(dropped.items())), {})


# method -> layout function (raw tensors, arch=...) -> Mapped
LAYOUTS: dict[str, Callable[..., Mapped]] = {
    "videomae": videomae, "supervised_vit": partial(videomae, layout="supervised_vit"),
    "sigma": partial(videomae, layout="sigma"), "everest": partial(videomae, layout="everest"),
    "mgmae": mgmae, "mvd": mvd, "mme": mme, "umt": umt, "svt": svt, "viclip": viclip, "clip": clip,
    "hf_videomae": hf_videomae, "hf_timesformer": hf_timesformer,
}
