"""ViT checkpoint layouts: synthetic raw state dicts in each published layout (backbone + the junk parts those
files hold) mapped onto the tiny backbones, tensor by tensor, and every refusal."""

from __future__ import annotations

import pytest
import torch

from severe.checkpoints.vit_layouts import LAYOUTS, Mapped, arch_key_shapes
from severe.errors import SevereError
from severe.models.vit import build_vit
from severe.models.vit_common import sincos_3d_table, sinusoid_table


def backbone(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random-valued state dict of the tiny arch (distinct values, so a swapped tensor is noticed)."""
    torch.manual_seed(seed)
    return {k: torch.randn(v.shape) for k, v in build_vit(arch).state_dict().items()}


def junk(*names: str) -> dict[str, torch.Tensor]:
    return {n: torch.randn(3) for n in names}


def assert_kept(mapped: Mapped, source: dict[str, torch.Tensor], names: dict[str, str]) -> None:
    """Every named kept tensor is the source tensor itself (nothing copied, cast or reordered)."""
    for ours, theirs in names.items():
        assert mapped.state_dict[ours] is source[theirs], ours


def loads_strictly(mapped: Mapped, arch: str) -> None:
    model = build_vit(arch)
    model.load_state_dict(mapped.state_dict, strict=True)
    assert list(mapped.state_dict) == list(arch_key_shapes(arch))
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 2, 32, 32)).shape == (1, 64)


def encoder_part(sd):
    return {k: v for k, v in sd.items() if not k.startswith("fc_norm.")}


PRETRAIN_JUNK = junk("decoder.blocks.0.mlp.fc1.weight", "decoder.norm.weight", "decoder.head.weight",
                     "encoder_to_decoder.weight", "mask_token")


@pytest.mark.parametrize("method", ["videomae", "sigma", "everest"])
def test_videomae_pretraining_layout(method):
    sd = backbone("vit_tiny_videomae")
    raw = {f"encoder.{k}": v for k, v in encoder_part(sd).items()}
    raw.update({"encoder.norm.weight": torch.randn(64), "encoder.norm.bias": torch.randn(64), **PRETRAIN_JUNK})
    if method == "sigma":
        raw.update(junk("prototypes.weight", "head.0.weight", "head.2.weight"))
    mapped = LAYOUTS[method](raw, arch="vit_tiny_videomae")
    assert_kept(mapped, raw, {k: f"encoder.{k}" for k in encoder_part(sd)})
    assert torch.equal(mapped.state_dict["fc_norm.weight"], torch.ones(64))
    assert torch.equal(mapped.state_dict["fc_norm.bias"], torch.zeros(64))
    assert mapped.fresh == {"fc_norm.weight": "ones", "fc_norm.bias": "zeros"}
    expected = {"decoder": 3, "encoder.norm": 2, "encoder_to_decoder": 1, "mask_token": 1}
    if method == "sigma":
        expected.update({"prototypes": 1, "head": 2})
    assert mapped.dropped == expected
    loads_strictly(mapped, "vit_tiny_videomae")


@pytest.mark.parametrize("wrapper", ["", "module."])
def test_videomae_finetuned_layout_keeps_fc_norm(wrapper):
    sd = backbone("vit_tiny_videomae")
    raw = {f"{wrapper}{k}": v for k, v in sd.items()}
    raw.update(junk(f"{wrapper}head.weight", f"{wrapper}head.bias"))
    mapped = LAYOUTS["supervised_vit"](raw, arch="vit_tiny_videomae")
    assert_kept(mapped, raw, {k: f"{wrapper}{k}" for k in sd})
    assert mapped.fresh == {} and mapped.dropped == {f"{wrapper}head": 2}
    loads_strictly(mapped, "vit_tiny_videomae")


def test_mgmae_strips_torch_compile_prefix():
    sd = backbone("vit_tiny_videomae")
    raw = {f"_orig_mod.encoder.{k}": v for k, v in encoder_part(sd).items()}
    raw.update({f"_orig_mod.{k}": v for k, v in PRETRAIN_JUNK.items()})
    mapped = LAYOUTS["mgmae"](raw, arch="vit_tiny_videomae")
    assert_kept(mapped, raw, {k: f"_orig_mod.encoder.{k}" for k in encoder_part(sd)})
    assert mapped.dropped == {"decoder": 3, "encoder_to_decoder": 1, "mask_token": 1}


def test_mvd_saved_table_verified_then_dropped():
    sd = backbone("vit_tiny_mvd")
    raw = dict(encoder_part(sd))
    raw["pos_embed"] = sincos_3d_table((8, 7, 7), 64).clone()  # 16 frames, tubelet 2, 112 crop
    raw.update({"norm.weight": torch.randn(64), "norm.bias": torch.randn(64)})
    raw.update(junk("decoder_img.blocks.0.norm1.weight", "decoder_vid.head.weight", "down_img.weight",
                    "down_vid.weight", "mask_token_img", "mask_token_vid", "pos_embed_img", "pos_embed_vid"))
    mapped = LAYOUTS["mvd"](raw, arch="vit_tiny_mvd")
    assert_kept(mapped, raw, {k: k for k in encoder_part(sd)})
    assert mapped.dropped == {"decoder_img": 1, "decoder_vid": 1, "down_img": 1, "down_vid": 1, "mask_token_img": 1,
                              "mask_token_vid": 1, "norm": 2, "pos_embed": 1, "pos_embed_img": 1, "pos_embed_vid": 1}
    raw["pos_embed"] = sinusoid_table(392, 64)  # VideoMAE's 1-D table is not MVD's
    with pytest.raises(SevereError, match="differs from the sincos_3d table"):
        LAYOUTS["mvd"](raw, arch="vit_tiny_mvd")


def test_videomae_saved_table_must_be_the_generated_one():
    sd = backbone("vit_tiny_videomae")
    raw = {f"encoder.{k}": v for k, v in encoder_part(sd).items()}
    raw["encoder.pos_embed"] = sinusoid_table(392, 64).clone()
    assert LAYOUTS["videomae"](raw, arch="vit_tiny_videomae").dropped == {"encoder.pos_embed": 1}
    raw["encoder.pos_embed"] = raw["encoder.pos_embed"] + 1e-3  # learned / interpolated table
    with pytest.raises(SevereError, match="encoder.pos_embed.*differs.*cannot be converted exactly"):
        LAYOUTS["videomae"](raw, arch="vit_tiny_videomae")


@pytest.mark.parametrize("prefix", ["encoder.model.", "encoder_q.encoder.model."])
def test_mme_prefixes(prefix):
    sd = backbone("vit_tiny_videomae")
    raw = {f"{prefix}{k}": v for k, v in sd.items()}
    raw.update(junk("encoder_k.encoder.model.blocks.0.norm1.weight", "queue"))
    mapped = LAYOUTS["mme"](raw, arch="vit_tiny_videomae")
    assert_kept(mapped, raw, {k: f"{prefix}{k}" for k in sd})
    assert mapped.dropped == {"encoder_k": 1, "queue": 1}


def test_umt_single_modality_pretraining():
    sd = backbone("vit_tiny_umt")
    raw = {f"encoder.{k}": v for k, v in encoder_part(sd).items()}
    raw.update(junk("encoder.norm.weight", "clip_decoder.0.head.weight", "clip_decoder.0.norm.weight"))
    mapped = LAYOUTS["umt"](raw, arch="vit_tiny_umt")
    assert_kept(mapped, raw, {k: f"encoder.{k}" for k in encoder_part(sd)})
    assert mapped.dropped == {"clip_decoder": 2, "encoder.norm": 1} and "fc_norm.weight" in mapped.fresh


def test_umt_video_text_pool_norm_becomes_fc_norm():
    sd = backbone("vit_tiny_umt")
    raw = {f"vision_encoder.encoder.{k}": v for k, v in encoder_part(sd).items()}
    raw["vision_encoder.pool_norm.weight"], raw["vision_encoder.pool_norm.bias"] = sd["fc_norm.weight"], sd["fc_norm.bias"]
    raw.update(junk("vision_encoder.clip_decoder.0.head.weight", "clip_teacher.conv1.weight",
                    "clip_teacher.transformer.resblocks.0.ln_1.weight", "text_encoder.bert.embeddings.word_embeddings.weight",
                    "vision_proj.weight", "text_proj.weight", "itm_head.weight", "temp"))
    mapped = LAYOUTS["umt"](raw, arch="vit_tiny_umt")
    names = {k: f"vision_encoder.encoder.{k}" for k in encoder_part(sd)}
    names.update({"fc_norm.weight": "vision_encoder.pool_norm.weight", "fc_norm.bias": "vision_encoder.pool_norm.bias"})
    assert_kept(mapped, raw, names)
    assert mapped.fresh == {}
    assert mapped.dropped == {"clip_teacher": 2, "itm_head": 1, "temp": 1, "text_encoder": 1, "text_proj": 1,
                              "vision_encoder.clip_decoder": 1, "vision_proj": 1}
    raw["vision_encoder.encoder.norm.weight"] = torch.randn(64)
    with pytest.raises(SevereError, match="encoder.norm.weight' is present"):
        LAYOUTS["umt"](raw, arch="vit_tiny_umt")


def test_svt_teacher_kept_dino_head_dropped_student_refused():
    sd = backbone("vit_tiny_timesformer")
    raw = {f"backbone.{k}": v for k, v in sd.items()}
    raw.update(junk("head.mlp.0.weight", "head.mlp.4.bias", "head.last_layer.weight_g", "head.last_layer.weight_v"))
    mapped = LAYOUTS["svt"](raw, arch="vit_tiny_timesformer")
    assert_kept(mapped, raw, {k: f"backbone.{k}" for k in sd})
    assert mapped.dropped == {"head": 4} and mapped.fresh == {}
    loads_strictly(mapped, "vit_tiny_timesformer")
    student = {f"module.{k}": v for k, v in raw.items()}
    with pytest.raises(SevereError, match="student weights.*'teacher' entry"):
        LAYOUTS["svt"](student, arch="vit_tiny_timesformer")
    timesformer = {f"model.{k}": v for k, v in sd.items()} | junk("model.head.weight", "model.head.bias")
    assert LAYOUTS["svt"](timesformer, arch="vit_tiny_timesformer").dropped == {"model.head": 2}


def test_viclip_layout():
    sd = backbone("vit_tiny_clip")
    raw = {f"vision_encoder.{k}": v for k, v in sd.items()}
    raw.update(junk("vision_encoder.proj", "text_encoder.transformer.resblocks.0.ln_1.weight",
                    "text_encoder.token_embedding.weight", "temp"))
    mapped = LAYOUTS["viclip"](raw, arch="vit_tiny_clip")
    assert_kept(mapped, raw, {k: f"vision_encoder.{k}" for k in sd})
    assert mapped.dropped == {"temp": 1, "text_encoder": 2, "vision_encoder.proj": 1} and mapped.fresh == {}
    loads_strictly(mapped, "vit_tiny_clip")


def test_clip_image_weights_inflated_exactly():
    sd = backbone("vit_tiny_clip")
    raw = {f"visual.{k}": v for k, v in sd.items() if k != "temporal_positional_embedding"}
    raw["visual.conv1.weight"] = sd["conv1.weight"][:, :, 0].clone()  # 2-D image kernel
    raw.update(junk("visual.proj", "transformer.resblocks.0.attn.in_proj_weight", "token_embedding.weight",
                    "positional_embedding", "ln_final.weight", "text_projection", "logit_scale"))
    mapped = LAYOUTS["clip"](raw, arch="vit_tiny_clip")
    assert torch.equal(mapped.state_dict["conv1.weight"], raw["visual.conv1.weight"].unsqueeze(2))
    assert torch.equal(mapped.state_dict["temporal_positional_embedding"], torch.zeros(1, 8, 64))
    assert mapped.fresh == {"temporal_positional_embedding": "zeros"}
    assert mapped.dropped == {"ln_final": 1, "logit_scale": 1, "positional_embedding": 1, "text_projection": 1,
                              "token_embedding": 1, "transformer": 1, "visual.proj": 1}
    assert_kept(mapped, raw, {k: f"visual.{k}" for k in sd if k not in ("conv1.weight", "temporal_positional_embedding")})
    loads_strictly(mapped, "vit_tiny_clip")
    # one frame through the inflated model = the image model (conv on the frame, mean of a zero temporal table)
    model = build_vit("vit_tiny_clip").eval()
    model.load_state_dict(mapped.state_dict)
    frame = torch.randn(1, 3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.conv1(frame)[:, :, 0],
                                   torch.nn.functional.conv2d(frame[:, :, 0], raw["visual.conv1.weight"], stride=16))


@pytest.mark.parametrize("extra,why", [
    ("encoder.blocks.0.gamma_1", "layer scale"),
    ("encoder.cls_token", "cls token"),
    ("encoder.blocks.1.attn.scale", "cosine attention"),
    ("encoder.blocks.0.attn.k_bias", r"1 unexpected \(e.g. blocks.0.attn.k_bias\)"),
    ("encoder.rel_pos_bias", "unexpected backbone key 'encoder.rel_pos_bias'"),
])
def test_unrepresentable_parts_are_refused(extra, why):
    raw = {f"encoder.{k}": v for k, v in encoder_part(backbone("vit_tiny_videomae")).items()}
    raw[extra] = torch.randn(64)
    with pytest.raises(SevereError, match=why):
        LAYOUTS["videomae"](raw, arch="vit_tiny_videomae")


def test_missing_or_misshapen_keys_are_refused():
    raw = {f"encoder.{k}": v for k, v in encoder_part(backbone("vit_tiny_videomae")).items()}
    del raw["encoder.blocks.1.mlp.fc2.bias"]
    with pytest.raises(SevereError, match=r"exact vit_tiny_videomae: 1 missing \(e.g. blocks.1.mlp.fc2.bias\)"):
        LAYOUTS["videomae"](raw, arch="vit_tiny_videomae")
    raw["encoder.blocks.1.mlp.fc2.bias"] = torch.randn(32)
    with pytest.raises(SevereError, match=r"'blocks.1.mlp.fc2.bias' has shape \(32,\), expected \(64,\)"):
        LAYOUTS["videomae"](raw, arch="vit_tiny_videomae")
    # a ViT-B file into the tubelet-1 UMT arch: the patch kernel's shape is wrong
    raw = {f"encoder.{k}": v for k, v in encoder_part(backbone("vit_tiny_videomae")).items()}
    with pytest.raises(SevereError, match="patch_embed.proj.weight' has shape"):
        LAYOUTS["umt"](raw, arch="vit_tiny_umt")


def test_wrong_layout_is_a_one_line_error():
    raw = {f"backbone.{k}": v for k, v in backbone("vit_tiny_timesformer").items()}
    with pytest.raises(SevereError, match="not a viclip checkpoint: no 'conv1.weight'"):
        LAYOUTS["viclip"](raw, arch="vit_tiny_clip")


# ---------------------------------------------------------------- Hugging Face transformers naming

def to_hf_videomae(sd: dict[str, torch.Tensor], pretraining: bool) -> dict[str, torch.Tensor]:
    """Our VideoMAE names -> transformers' (VideoMAEFor*): qkv split into query/key/value."""
    block = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
             "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense", "attn": "attention.attention"}
    out = {}
    for key, value in sd.items():
        if key.startswith("patch_embed.proj."):
            out["videomae.embeddings.patch_embeddings.projection." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("fc_norm."):
            if not pretraining:
                out[key] = value
        elif key.endswith("attn.qkv.weight"):
            i = key.split(".")[1]
            for name, chunk in zip(("query", "key", "value"), value.chunk(3)):
                out[f"videomae.encoder.layer.{i}.attention.attention.{name}.weight"] = chunk
        else:
            _, i, rest = key.split(".", 2)  # blocks.<i>.<module>.<param>; q_bias/v_bias are params of attn
            module, _, param = rest.rpartition(".")
            out[f"videomae.encoder.layer.{i}.{block[module]}.{param}"] = value
    return out


def test_hf_videomae_pretraining_and_finetuned():
    sd = backbone("vit_tiny_videomae")
    raw = to_hf_videomae(sd, pretraining=True)
    assert "videomae.encoder.layer.1.attention.attention.q_bias" in raw
    assert "videomae.encoder.layer.0.layernorm_before.weight" in raw and "videomae.encoder.layer.1.output.dense.bias" in raw
    raw.update({"videomae.layernorm.weight": torch.randn(64), "videomae.layernorm.bias": torch.randn(64)})
    raw.update(junk("decoder.decoder_layers.0.attention.attention.query.weight", "decoder.decoder_pred.weight",
                    "encoder_to_decoder.weight", "mask_token"))
    mapped = LAYOUTS["hf_videomae"](raw, arch="vit_tiny_videomae")
    for key, value in encoder_part(sd).items():
        assert torch.equal(mapped.state_dict[key], value), key
    assert mapped.fresh == {"fc_norm.weight": "ones", "fc_norm.bias": "zeros"}
    assert mapped.dropped == {"decoder": 2, "encoder_to_decoder": 1, "mask_token": 1, "videomae.layernorm": 2}
    raw = to_hf_videomae(sd, pretraining=False) | junk("classifier.weight", "classifier.bias")
    mapped = LAYOUTS["hf_videomae"](raw, arch="vit_tiny_videomae")
    assert all(torch.equal(mapped.state_dict[k], v) for k, v in sd.items())
    assert mapped.fresh == {} and mapped.dropped == {"classifier": 2}
    raw["videomae.encoder.layer.0.attention.attention.key.bias"] = torch.randn(64)
    with pytest.raises(SevereError, match="full key bias"):
        LAYOUTS["hf_videomae"](raw, arch="vit_tiny_videomae")


def test_hf_timesformer():
    sd = backbone("vit_tiny_timesformer")
    block = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.qkv": "attention.attention.qkv",
             "attn.proj": "attention.output.dense", "temporal_norm1": "temporal_layernorm",
             "temporal_attn.qkv": "temporal_attention.attention.qkv",
             "temporal_attn.proj": "temporal_attention.output.dense", "temporal_fc": "temporal_dense",
             "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    top = {"cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
           "time_embed": "embeddings.time_embeddings", "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
           "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias", "norm.weight": "layernorm.weight",
           "norm.bias": "layernorm.bias"}
    names = {}
    for key in sd:
        if key in top:
            names[key] = "timesformer." + top[key]
        else:
            _, i, rest = key.split(".", 2)
            module, _, param = rest.rpartition(".")
            names[key] = f"timesformer.encoder.layer.{i}.{block[module]}.{param}"
    raw = {names[k]: v for k, v in sd.items()} | junk("classifier.weight", "classifier.bias")
    mapped = LAYOUTS["hf_timesformer"](raw, arch="vit_tiny_timesformer")
    assert_kept(mapped, raw, names)
    assert mapped.dropped == {"classifier": 2}
    loads_strictly(mapped, "vit_tiny_timesformer")
