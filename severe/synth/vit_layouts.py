"""Each ViT method's on-disk checkpoint layout (docs/checkpoints.md §4) as one function, referenced from its row
of the method table (``ViTMethodSpec.synthetic``), in the shape of :mod:`severe.synth.layouts`.

A layout function receives the seeded weights of the method's tiny twin architecture (:class:`Weights`: the
backbone, a second copy with other values for students / momentum encoders, the seed, the variant) and
returns (object to save, the exact backbone state_dict a correct conversion must produce). Decoders, heads,
text towers, teachers, optimiser state and pickled objects (``argparse.Namespace`` args, a config object)
are written as the real files hold them, at the tiny width so files stay small.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import Any

import torch

from severe.models.vit_common import sincos_3d_table
from severe.synth.layouts import State, Weights, random_state

_OPTIMIZER = {"state": {}, "param_groups": [{"lr": 1.5e-4, "betas": (0.9, 0.95), "weight_decay": 0.05, "params": [0, 1]}]}
_DECODER = 32  # decoder width of the synthetic pretraining models


class Config(dict):
    """Stands in for a repository's own config class (UMT's ``Config``/EasyDict): unpickling it needs --trust."""


def _dim(w: Weights) -> int:
    key = "conv1.weight" if "conv1.weight" in w.backbone else "patch_embed.proj.weight"
    return int(w.backbone[key].shape[0])


def _args(**fields: Any) -> argparse.Namespace:
    return argparse.Namespace(model="vit_base_patch16_224", batch_size=32, lr=1.5e-4, **fields)


def _saved(model: dict, w: Weights, **extra: Any) -> dict:
    """``utils.save_model`` of the VideoMAE code base: model, optimizer, epoch, scaler, args."""
    return {"model": model, "optimizer": _OPTIMIZER, "epoch": 799, "scaler": {"scale": 65536.0, "_growth_tracker": 10},
            "args": _args(**extra)}


def _encoder(w: Weights) -> State:
    return OrderedDict((k, v) for k, v in w.backbone.items() if not k.startswith("fc_norm."))


def _fresh_fc_norm(w: Weights) -> State:
    """The backbone a pretraining file converts to: its encoder, fc_norm at weight 1 / bias 0."""
    out = _encoder(w)
    dim = _dim(w)
    out["fc_norm.weight"], out["fc_norm.bias"] = torch.ones(dim), torch.zeros(dim)
    return out


def _decoder(w: Weights, tubelet: int, prefix: str = "") -> dict[str, torch.Tensor]:
    d, dim = _DECODER, _dim(w)
    shapes = {"decoder.blocks.0.norm1.weight": (d,), "decoder.blocks.0.attn.qkv.weight": (3 * d, d),
              "decoder.blocks.0.mlp.fc1.weight": (4 * d, d), "decoder.norm.weight": (d,),
              "decoder.head.weight": (3 * tubelet * 16 * 16, d), "encoder_to_decoder.weight": (d, dim),
              "mask_token": (1, 1, d)}
    return {prefix + k: v for k, v in random_state(shapes, w.seed + 20).items()}


def _final_norm(w: Weights, name: str) -> dict[str, torch.Tensor]:
    dim = _dim(w)
    return dict(random_state({f"{name}.weight": (dim,), f"{name}.bias": (dim,)}, w.seed + 21))


def _pretraining_model(w: Weights, prefix: str = "") -> dict[str, torch.Tensor]:
    """VideoMAE's PretrainVisionTransformer state: ``encoder.*`` with its final norm, decoder parts."""
    model = {f"{prefix}encoder.{k}": v for k, v in _encoder(w).items()}
    model.update({prefix + k: v for k, v in _final_norm(w, "encoder.norm").items()})
    model.update(_decoder(w, tubelet=2, prefix=prefix))
    return model


# ----------------------------------------------------------------------------- Hugging Face naming

_HF_BLOCK = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
             "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense", "attn": "attention.attention",
             "attn.qkv": "attention.attention.qkv", "temporal_norm1": "temporal_layernorm",
             "temporal_attn.qkv": "temporal_attention.attention.qkv",
             "temporal_attn.proj": "temporal_attention.output.dense", "temporal_fc": "temporal_dense"}


def to_hf_videomae(state: State) -> dict[str, torch.Tensor]:
    """Our VideoMAE encoder names -> ``transformers`` ``videomae.*`` names (qkv split into query/key/value;
    ``fc_norm`` stays at the top level as in ``VideoMAEForVideoClassification``)."""
    out = {}
    for key, value in state.items():
        if key.startswith("patch_embed.proj."):
            out["videomae.embeddings.patch_embeddings.projection." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("fc_norm."):
            out[key] = value
        elif key.endswith("attn.qkv.weight"):
            i = key.split(".")[1]
            for name, chunk in zip(("query", "key", "value"), value.chunk(3)):
                out[f"videomae.encoder.layer.{i}.attention.attention.{name}.weight"] = chunk.clone()
        else:
            _, i, rest = key.split(".", 2)
            module, _, param = rest.rpartition(".")
            out[f"videomae.encoder.layer.{i}.{_HF_BLOCK[module]}.{param}"] = value
    return out


_HF_TIMESFORMER_TOP = {"cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
                       "time_embed": "embeddings.time_embeddings", "norm.weight": "layernorm.weight",
                       "norm.bias": "layernorm.bias", "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
                       "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias"}


def to_hf_timesformer(state: State) -> dict[str, torch.Tensor]:
    """Our TimeSformer names -> ``transformers`` ``timesformer.*`` names."""
    out = {}
    for key, value in state.items():
        if key in _HF_TIMESFORMER_TOP:
            out["timesformer." + _HF_TIMESFORMER_TOP[key]] = value
        else:
            _, i, rest = key.split(".", 2)
            module, _, param = rest.rpartition(".")
            out[f"timesformer.encoder.layer.{i}.{_HF_BLOCK[module]}.{param}"] = value
    return out


# ----------------------------------------------------------------------------- one function per layout

def videomae(w: Weights) -> tuple[Any, State]:
    """Pretraining ``save_model`` file (``model``: encoder + final norm + decoder, pickled args); variant
    ``finetuned``: a DeepSpeed-style ``module`` with head and fc_norm; ``hf``: VideoMAEForPreTraining names."""
    if w.variant == "finetuned":
        head = random_state({"head.weight": (400, _dim(w)), "head.bias": (400,)}, w.seed + 22)
        return {"module": {**w.backbone, **head}, "epoch": 74, "global_steps": 1000}, w.backbone
    if w.variant == "hf":
        hf = {k: v for k, v in to_hf_videomae(_encoder(w)).items()}
        hf.update({"videomae." + k.replace("norm", "layernorm"): v for k, v in _final_norm(w, "norm").items()})
        d = _DECODER
        hf.update(random_state({"decoder.decoder_layers.0.attention.attention.query.weight": (d, d),
                                "decoder.decoder_norm.weight": (d,), "decoder.head.weight": (3 * 2 * 16 * 16, d),
                                "encoder_to_decoder.weight": (d, _dim(w)), "mask_token": (1, 1, d)}, w.seed + 23))
        return hf, _fresh_fc_norm(w)
    return _saved(_pretraining_model(w), w, mask_ratio=0.9), _fresh_fc_norm(w)


def supervised_vit(w: Weights) -> tuple[Any, State]:
    """A K400-finetuned VideoMAE: ``model`` with fc_norm and the 400-way head, pickled args; variant ``hf``:
    ``VideoMAEForVideoClassification`` names (``videomae.*``, ``fc_norm``, ``classifier``)."""
    head = random_state({"head.weight": (400, _dim(w)), "head.bias": (400,)}, w.seed + 22)
    if w.variant == "hf":
        return {**to_hf_videomae(w.backbone), **{"classifier." + k[5:]: v for k, v in head.items()}}, w.backbone
    return _saved({**w.backbone, **head}, w, finetune="videomae_pretrain.pth", nb_classes=400), w.backbone


def everest(w: Weights) -> tuple[Any, State]:
    """EVEREST: the VideoMAE pretraining layout."""
    return _saved(_pretraining_model(w), w, mask_ratio=0.9, mcm=True), _fresh_fc_norm(w)


def sigma(w: Weights) -> tuple[Any, State]:
    """SIGMA: the VideoMAE pretraining layout plus Sinkhorn ``prototypes`` and a projection head."""
    model = _pretraining_model(w)
    model.update(random_state({"prototypes.weight": (64, _DECODER), "head.0.weight": (_DECODER, _dim(w)),
                               "head.0.bias": (_DECODER,), "head.2.weight": (_DECODER, _DECODER)}, w.seed + 24))
    return _saved(model, w, loss_func="SWAV", distillation_teacher="dino_b"), _fresh_fc_norm(w)


def mgmae(w: Weights) -> tuple[Any, State]:
    """MGMAE (VideoMAE V2 code): the pretraining model saved from ``torch.compile`` (``_orig_mod.`` prefixes)."""
    return _saved(_pretraining_model(w, prefix="_orig_mod."), w, mask_type="mgmae"), _fresh_fc_norm(w)


def mme(w: Weights) -> tuple[Any, State]:
    """MME: the encoder under ``encoder.model.`` (variant ``momentum``: ``encoder_q.encoder.model.``)."""
    prefix = "encoder_q.encoder.model." if w.variant == "momentum" else "encoder.model."
    model = {prefix + k: v for k, v in _encoder(w).items()}
    model.update({prefix + k: v for k, v in _final_norm(w, "norm").items()})
    model.update(_decoder(w, tubelet=2))
    return _saved(model, w, target="hog_flow"), _fresh_fc_norm(w)


def mvd(w: Weights) -> tuple[Any, State]:
    """MVD student: top-level encoder names, the saved 3-D sin-cos ``pos_embed`` (16 frames, 112 crop for the
    tiny twin), image and video decoders, projections, mask tokens and their position tables."""
    dim, d = _dim(w), _DECODER
    model = dict(_encoder(w))
    model.update(_final_norm(w, "norm"))
    model["pos_embed"] = sincos_3d_table((8, 7, 7), dim).clone()
    model.update(random_state({"decoder_img.blocks.0.norm1.weight": (d,), "decoder_img.head.weight": (768, d),
                               "decoder_vid.blocks.0.norm1.weight": (d,), "decoder_vid.head.weight": (1536, d),
                               "down_img.weight": (d, dim), "down_vid.weight": (d, dim), "mask_token_img": (1, 1, d),
                               "mask_token_vid": (1, 1, d), "pos_embed_img": (1, 392, d),
                               "pos_embed_vid": (1, 392, d)}, w.seed + 25))
    return _saved(model, w, teacher_model_image="vit_base", teacher_model_video="videomae_b"), _fresh_fc_norm(w)


def umt(w: Weights) -> tuple[Any, State]:
    """UMT single-modality pretraining (``model``: ``encoder.*`` + ``clip_decoder.*``); variant ``video_text``:
    the multi-modality file (``vision_encoder.encoder.*``, ``pool_norm``, CLIP teacher, BERT text encoder,
    projections, ``itm_head``, ``temp``, a pickled config object)."""
    dim = _dim(w)
    junk = {"clip_decoder.0.head.weight": (dim, dim), "clip_decoder.0.norm.weight": (dim,)}
    if w.variant != "video_text":
        model = {f"encoder.{k}": v for k, v in _encoder(w).items()}
        model.update(_final_norm(w, "encoder.norm"))
        model.update(random_state(junk, w.seed + 26))
        return _saved(model, w, clip_teacher="ViT-B/16", tubelet_size=1), _fresh_fc_norm(w)
    model = {f"vision_encoder.encoder.{k}": v for k, v in _encoder(w).items()}
    model["vision_encoder.pool_norm.weight"] = w.backbone["fc_norm.weight"]
    model["vision_encoder.pool_norm.bias"] = w.backbone["fc_norm.bias"]
    model.update(random_state({**{"vision_encoder." + k: s for k, s in junk.items()},
                               "clip_teacher.conv1.weight": (dim, 3, 16, 16),
                               "clip_teacher.transformer.resblocks.0.ln_1.weight": (dim,),
                               "text_encoder.bert.embeddings.word_embeddings.weight": (100, dim),
                               "text_encoder.bert.encoder.layer.0.attention.self.query.weight": (dim, dim),
                               "vision_proj.weight": (32, dim), "vision_proj.bias": (32,), "text_proj.weight": (32, dim),
                               "itm_head.weight": (2, dim), "temp": ()}, w.seed + 27))
    config = Config(model=Config(vision_encoder=Config(name="vit_b16", num_frames=4, tubelet_size=1)))
    return {"model": model, "optimizer": _OPTIMIZER, "scheduler": {"last_epoch": 10}, "scaler": {"scale": 1024.0},
            "config": config, "epoch": 9, "global_step": 5000}, w.backbone


def viclip(w: Weights) -> tuple[Any, State]:
    """ViCLIP: the vision tower under ``vision_encoder.`` with its 768->512 ``proj``, a text encoder, ``temp``."""
    dim = _dim(w)
    model = {f"vision_encoder.{k}": v for k, v in w.backbone.items()}
    model.update(random_state({"vision_encoder.proj": (dim, 32), "text_encoder.token_embedding.weight": (100, dim),
                               "text_encoder.transformer.resblocks.0.ln_1.weight": (dim,), "temp": ()}, w.seed + 28))
    return {"model": model}, w.backbone


def clip(w: Weights) -> tuple[Any, State]:
    """An OpenAI CLIP image model state dict: ``visual.*`` with a 2-D patch kernel and no temporal embedding,
    ``visual.proj`` and the text tower. Converts to the inflated video model (temporal embedding zero)."""
    dim = _dim(w)
    visual = {k: v for k, v in w.backbone.items() if k != "temporal_positional_embedding"}
    visual["conv1.weight"] = w.backbone["conv1.weight"][:, :, 0].clone()
    obj = {f"visual.{k}": v for k, v in visual.items()}
    obj.update(random_state({"visual.proj": (dim, 32), "positional_embedding": (77, dim),
                             "token_embedding.weight": (100, dim), "transformer.resblocks.0.attn.in_proj_weight": (3 * dim, dim),
                             "ln_final.weight": (dim,), "text_projection": (dim, 32), "logit_scale": ()}, w.seed + 29))
    expected = OrderedDict(w.backbone)
    expected["temporal_positional_embedding"] = torch.zeros(w.backbone["temporal_positional_embedding"].shape)
    return obj, expected


def svt(w: Weights) -> tuple[Any, State]:
    """SVT ``train_ssl.py`` file: DDP ``student`` (``module.backbone.*``, other values), ``teacher``
    (``backbone.*`` + DINO head), ``args``, ``dino_loss``, optimiser; variants ``student_only`` (must be
    refused), ``bare_teacher`` (the teacher dict alone) and ``hf`` (``transformers`` TimesformerModel names)."""
    head_shapes = {"head.mlp.0.weight": (128, _dim(w)), "head.mlp.0.bias": (128,), "head.mlp.2.weight": (128, 128),
                   "head.last_layer.weight_g": (256, 1), "head.last_layer.weight_v": (256, 128)}
    head = random_state(head_shapes, w.seed + 30)
    teacher = {**{f"backbone.{k}": v for k, v in w.backbone.items()}, **head}
    student = {**{f"module.backbone.{k}": v for k, v in w.other.items()}, **{f"module.{k}": v for k, v in head.items()}}
    if w.variant == "bare_teacher":
        return teacher, w.backbone
    if w.variant == "hf":
        obj = to_hf_timesformer(w.backbone)
        obj.update(random_state({"classifier.weight": (400, _dim(w)), "classifier.bias": (400,)}, w.seed + 31))
        return obj, w.backbone
    obj = {"student": student, "teacher": teacher, "motion_student": 0, "motion_teacher": 0, "optimizer": _OPTIMIZER,
           "epoch": 20, "args": _args(arch="vit_base", out_dim=65536, global_crops_scale=(0.4, 1.0)),
           "dino_loss": {"center": torch.zeros(1, 256)}, "fp16_scaler": None}
    if w.variant == "student_only":
        del obj["teacher"]
    return obj, w.backbone
