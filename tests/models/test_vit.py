"""ViT video backbones: each family against an independent, loop-based implementation of the original forward
pass (float64, shared weights by state-dict key), shapes, activation checkpointing, the sinusoid table and the
published key names of the full-size models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from severe.errors import SevereError
from severe.models.clip_vit import CLIPVideoViT
from severe.models.timesformer import TimeSformer
from severe.models.videomae import VideoMAEViT
from severe.models.vit import VIT_ARCHS, build_vit
from severe.models.contract import check_backbone_contract
from severe.models.registry import BackboneSpec
from severe.models.vit_common import sincos_3d_table, sinusoid_table

TINY = dict(embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0)
TOL = dict(rtol=1e-9, atol=1e-9)


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """float64 copy with every parameter random (norm weights around 1), so no init symmetry hides a bug."""
    g = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
            is_norm_weight = p.ndim == 1 and name.endswith("weight")
            p.copy_(1 + 0.1 * noise if is_norm_weight else 0.3 * noise)
    return model


def clip_input(t: int, h: int, w: int, b: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- reference implementation (per sample, loops)

def ln(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def quick_gelu(x):
    return x / (1 + torch.exp(-1.702 * x))


def attention(x, w_qkv, b_qkv, w_out, b_out, heads):
    """x: N x D; explicit per-head softmax(q k^T / sqrt(d)) v."""
    d = x.shape[1]
    qkv = x @ w_qkv.T + b_qkv
    q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
    hd = d // heads
    outs = []
    for h in range(heads):
        sl = slice(h * hd, (h + 1) * hd)
        scores = torch.einsum("nc,mc->nm", q[:, sl], k[:, sl]) / math.sqrt(hd)
        a = torch.exp(scores - scores.max(-1, keepdim=True).values)
        a = a / a.sum(-1, keepdim=True)
        outs.append(a @ v[:, sl])
    return torch.cat(outs, 1) @ w_out.T + b_out


def patch_tokens(x, weight, bias, kt):
    """x: 3 x T x H x W (one sample) -> {(t, i, j): D-vector}, a dot product per non-overlapping patch."""
    p = weight.shape[-1]
    w = weight if weight.ndim == 5 else weight[:, :, None]
    out = {}
    for t in range(x.shape[1] // kt):
        for i in range(x.shape[2] // p):
            for j in range(x.shape[3] // p):
                patch = x[:, t * kt:(t + 1) * kt, i * p:(i + 1) * p, j * p:(j + 1) * p]
                out[t, i, j] = torch.einsum("dcxyz,cxyz->d", w, patch) + (0 if bias is None else bias)
    return out


def published_sinusoid(n, d):
    """VideoMAE's get_sinusoid_encoding_table, transcribed: numpy float64, stored as float32."""
    table = np.array([[pos / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for pos in range(n)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.tensor(table, dtype=torch.float32).double()


def np_sincos_1d(d, pos):
    omega = np.arange(d // 2, dtype=np.float64) / (d / 2.0)
    out = np.einsum("m,d->md", pos.reshape(-1), 1.0 / 10000 ** omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def published_sincos_3d(t, h, w, d):
    """MVD's get_3d_sincos_pos_embed, transcribed (meshgrid with w first; here H and W may differ)."""
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=0)
    ds = d // 4 * 3
    spatial = np.concatenate([np_sincos_1d(ds // 2, grid[0]), np_sincos_1d(ds // 2, grid[1])], axis=1)
    temporal = np_sincos_1d(d // 4, np.arange(t, dtype=np.float32))
    table = np.concatenate([np.repeat(temporal[:, None], h * w, axis=1), np.repeat(spatial[None], t, axis=0)], -1)
    return torch.tensor(table.reshape(-1, d), dtype=torch.float32).double()


def ref_videomae(sd, x, heads, tubelet, table="sinusoid_1d"):
    """Returns (pooled B x D, map B x D x T' x H' x W')."""
    pooled, maps = [], []
    for xb in x:
        toks = patch_tokens(xb, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], tubelet)
        keys = sorted(toks)  # (t, i, j) lexicographic = t-major
        z = torch.stack([toks[k] for k in keys])
        t_, h_, w_ = (max(k[a] for k in keys) + 1 for a in range(3))
        if table == "sincos_3d":
            z = z + published_sincos_3d(t_, h_, w_, z.shape[1])
        else:
            z = z + published_sinusoid(len(keys), z.shape[1])
        i = 0
        while f"blocks.{i}.norm1.weight" in sd:
            p = lambda n: sd[f"blocks.{i}.{n}"]  # noqa: E731
            zero = torch.zeros_like(p("attn.q_bias"))
            b_qkv = torch.cat([p("attn.q_bias"), zero, p("attn.v_bias")])
            z = z + attention(ln(z, p("norm1.weight"), p("norm1.bias"), 1e-6), p("attn.qkv.weight"), b_qkv,
                              p("attn.proj.weight"), p("attn.proj.bias"), heads)
            h = ln(z, p("norm2.weight"), p("norm2.bias"), 1e-6)
            z = z + gelu(h @ p("mlp.fc1.weight").T + p("mlp.fc1.bias")) @ p("mlp.fc2.weight").T + p("mlp.fc2.bias")
            i += 1
        pooled.append(ln(z.mean(0), sd["fc_norm.weight"], sd["fc_norm.bias"], 1e-6))
        fmap = torch.zeros(z.shape[1], t_, h_, w_, dtype=z.dtype)
        for n, (t, a, b) in enumerate(keys):
            fmap[:, t, a, b] = z[n]
        maps.append(fmap)
    return torch.stack(pooled), torch.stack(maps)


def nearest_index(dst: int, n_in: int, n_out: int) -> int:
    return min(int(math.floor(dst * n_in / n_out)), n_in - 1)


def ref_timesformer(sd, x, heads):
    dim = sd["cls_token"].shape[-1]
    pos_grid = int(round(math.sqrt(sd["pos_embed"].shape[1] - 1)))
    n_time = sd["time_embed"].shape[1]
    pooled, maps = [], []
    for xb in x:
        toks = patch_tokens(xb, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], 1)
        T, H, W = (max(k[a] for k in toks) + 1 for a in range(3))
        spatial = [(i, j) for i in range(H) for j in range(W)]
        # patch state p[s][t]; spatial pos by nearest neighbour on the square grid, time pos by nearest too
        p = [[toks[t, i, j]
              + sd["pos_embed"][0, 1 + nearest_index(i, pos_grid, H) * pos_grid + nearest_index(j, pos_grid, W)]
              + sd["time_embed"][0, nearest_index(t, n_time, T)] for t in range(T)] for (i, j) in spatial]
        c = sd["cls_token"][0, 0] + sd["pos_embed"][0, 0]
        k = 0
        while f"blocks.{k}.norm1.weight" in sd:
            q = lambda n: sd[f"blocks.{k}.{n}"]  # noqa: E731
            # temporal attention for each spatial position, then temporal_fc, residual
            for s in range(len(spatial)):
                seq = torch.stack(p[s])
                res = attention(ln(seq, q("temporal_norm1.weight"), q("temporal_norm1.bias"), 1e-6),
                                q("temporal_attn.qkv.weight"), q("temporal_attn.qkv.bias"),
                                q("temporal_attn.proj.weight"), q("temporal_attn.proj.bias"), heads)
                res = res @ q("temporal_fc.weight").T + q("temporal_fc.bias")
                p[s] = [p[s][t] + res[t] for t in range(T)]
            # spatial attention inside each frame with the cls token; cls residual averaged over frames
            cls_res = torch.zeros(dim, dtype=x.dtype)
            new_p = [list(row) for row in p]
            for t in range(T):
                seq = torch.stack([c] + [p[s][t] for s in range(len(spatial))])
                out = attention(ln(seq, q("norm1.weight"), q("norm1.bias"), 1e-6), q("attn.qkv.weight"),
                                q("attn.qkv.bias"), q("attn.proj.weight"), q("attn.proj.bias"), heads)
                cls_res = cls_res + out[0] / T
                for s in range(len(spatial)):
                    new_p[s][t] = p[s][t] + out[1 + s]
            p, c = new_p, c + cls_res

            def mlp(v):
                h = ln(v, q("norm2.weight"), q("norm2.bias"), 1e-6)
                return v + gelu(h @ q("mlp.fc1.weight").T + q("mlp.fc1.bias")) @ q("mlp.fc2.weight").T + q("mlp.fc2.bias")
            c = mlp(c)
            p = [[mlp(v) for v in row] for row in p]
            k += 1
        norm = lambda v: ln(v, sd["norm.weight"], sd["norm.bias"], 1e-6)  # noqa: E731
        pooled.append(norm(c))
        fmap = torch.zeros(dim, T, H, W, dtype=x.dtype)
        for s, (i, j) in enumerate(spatial):
            for t in range(T):
                fmap[:, t, i, j] = norm(p[s][t])
        maps.append(fmap)
    return torch.stack(pooled), torch.stack(maps)


def ref_clip(sd, x, heads):
    dim = sd["class_embedding"].shape[0]
    pos_grid = int(round(math.sqrt(sd["positional_embedding"].shape[0] - 1)))
    temporal = sd["temporal_positional_embedding"][0]
    pooled, maps = [], []
    for xb in x:
        toks = patch_tokens(xb, sd["conv1.weight"], None, sd["conv1.weight"].shape[2])
        T, H, W = (max(k[a] for k in toks) + 1 for a in range(3))
        spatial = sd["positional_embedding"][1:]
        if (H, W) != (pos_grid, pos_grid):  # bicubic resize of the square grid (ViCLIP's loader)
            grid = spatial.T.reshape(1, dim, pos_grid, pos_grid)
            spatial = F.interpolate(grid, size=(H, W), mode="bicubic", align_corners=False).reshape(dim, H * W).T
        if T == 1:
            tpos = [temporal.mean(0)]
        else:
            tpos = [temporal[t] if t < temporal.shape[0] else torch.zeros(dim, dtype=x.dtype) for t in range(T)]
        order = [(t, i, j) for i in range(H) for j in range(W) for t in range(T)]
        z = torch.stack([sd["class_embedding"] + sd["positional_embedding"][0]]
                        + [toks[t, i, j] + spatial[i * W + j] + tpos[t] for (t, i, j) in order])
        z = ln(z, sd["ln_pre.weight"], sd["ln_pre.bias"], 1e-5)
        k = 0
        while f"transformer.resblocks.{k}.ln_1.weight" in sd:
            q = lambda n: sd[f"transformer.resblocks.{k}.{n}"]  # noqa: E731
            z = z + attention(ln(z, q("ln_1.weight"), q("ln_1.bias"), 1e-5), q("attn.in_proj_weight"),
                              q("attn.in_proj_bias"), q("attn.out_proj.weight"), q("attn.out_proj.bias"), heads)
            h = ln(z, q("ln_2.weight"), q("ln_2.bias"), 1e-5)
            z = z + quick_gelu(h @ q("mlp.c_fc.weight").T + q("mlp.c_fc.bias")) @ q("mlp.c_proj.weight").T + q("mlp.c_proj.bias")
            k += 1
        z = ln(z, sd["ln_post.weight"], sd["ln_post.bias"], 1e-5)
        pooled.append(z[0])
        fmap = torch.zeros(dim, T, H, W, dtype=x.dtype)
        for n, (t, i, j) in enumerate(order):
            fmap[:, t, i, j] = z[1 + n]
        maps.append(fmap)
    return torch.stack(pooled), torch.stack(maps)


# ---------------------------------------------------------------- equivalence with the reference

def check_against(model, ref, x, **kw):
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    pooled, fmap = ref(sd, x, **kw)
    with torch.no_grad():
        torch.testing.assert_close(model(x), pooled, **TOL)
        torch.testing.assert_close(model.forward_features(x), fmap, **TOL)


@pytest.mark.parametrize("tubelet,shape", [(2, (4, 32, 32)), (2, (2, 48, 32)), (1, (3, 32, 16))])
def test_videomae_matches_reference(tubelet, shape):
    model = randomised(VideoMAEViT(tubelet=tubelet, **TINY))
    check_against(model, ref_videomae, clip_input(*shape), heads=4, tubelet=tubelet)


@pytest.mark.parametrize("shape", [(4, 32, 32), (2, 48, 32)])
def test_mvd_table_matches_reference(shape):
    model = randomised(VideoMAEViT(pos_table="sincos_3d", **TINY))
    check_against(model, ref_videomae, clip_input(*shape), heads=4, tubelet=2, table="sincos_3d")


@pytest.mark.parametrize("shape", [(4, 32, 32), (2, 48, 32), (6, 16, 48)])
def test_timesformer_matches_reference(shape):
    """Position grid 2x2 and 4 frames: equal grid, then resized space/time (nearest) both ways."""
    model = randomised(TimeSformer(img_size=32, num_frames=4, **TINY))
    check_against(model, ref_timesformer, clip_input(*shape), heads=4)


@pytest.mark.parametrize("shape", [(4, 32, 32), (2, 32, 32), (6, 32, 32), (1, 32, 32), (3, 48, 32)])
def test_clip_matches_reference(shape):
    """Temporal table of 4 frames: equal, truncated, zero-padded, mean for one frame; a resized spatial grid."""
    model = randomised(CLIPVideoViT(img_size=32, num_frames=4, **TINY))
    check_against(model, ref_clip, clip_input(*shape), heads=4)


def test_clip_with_tubelet_two_matches_reference():
    model = randomised(CLIPVideoViT(img_size=32, num_frames=2, tubelet=2, **TINY))
    check_against(model, ref_clip, clip_input(4, 32, 32), heads=4)


# ---------------------------------------------------------------- shapes, arguments, checkpointing

TINY_NAMES = [n for n in VIT_ARCHS if n.startswith("vit_tiny_")]


@pytest.mark.parametrize("name", TINY_NAMES)
@pytest.mark.parametrize("t,h,w", [(2, 32, 32), (4, 48, 64), (8, 16, 32)])
def test_shapes(name, t, h, w):
    model = build_vit(name).eval()
    fields = VIT_ARCHS[name][1]
    with torch.no_grad():
        x = torch.randn(2, 3, t, h, w)
        assert model(x).shape == (2, fields["feature_dim"])
        assert model.forward_features(x).shape == (2, fields["feature_dim"], t // fields["temporal_stride"], h // 16, w // 16)
    assert model.arch == name and model.feature_dim == fields["feature_dim"] == 64


@pytest.mark.parametrize("name,bad", [("vit_tiny_videomae", (3, 32, 32)), ("vit_tiny_clip", (2, 40, 32)),
                                      ("vit_tiny_timesformer", (2, 32, 24))])
def test_indivisible_input_is_a_one_line_error(name, bad):
    with pytest.raises(SevereError, match=rf"{name} needs frames divisible by \d"):
        build_vit(name)(torch.randn(1, 3, *bad))


@pytest.mark.parametrize("name", TINY_NAMES)
def test_grad_checkpointing_same_output_and_grads(name):
    """Train mode with drop path 0.3: recomputation must replay the same random masks."""
    x = torch.randn(2, 3, 4, 32, 32)
    results = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = build_vit(name, drop_path_rate=0.3, grad_checkpointing=ckpt).double().train()
        torch.manual_seed(1)
        out = model(x.double())
        (out ** 2).sum().backward()
        results.append((out.detach(), {k: p.grad for k, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    assert results[0][1].keys() == results[1][1].keys()
    for k, g in results[0][1].items():
        torch.testing.assert_close(results[1][1][k], g, rtol=1e-12, atol=1e-12, msg=k)


@pytest.mark.parametrize("name", TINY_NAMES)
def test_drop_path_default_off_and_active_when_set(name):
    x = torch.randn(2, 3, 4, 32, 32)
    model = build_vit(name).train()
    torch.testing.assert_close(model(x), model(x))  # default 0: training is deterministic
    model = build_vit(name, drop_path_rate=0.5).train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_timesformer_starts_later_temporal_branches_at_zero():
    model = TimeSformer(**{**TINY, "depth": 3})
    assert model.blocks[0].temporal_fc.weight.abs().sum() > 0
    for block in model.blocks[1:]:
        assert block.temporal_fc.weight.abs().sum() == 0 and block.temporal_fc.bias.abs().sum() == 0


def test_sinusoid_table_hand_computed_entries():
    table = sinusoid_table(1568, 768)
    assert table.shape == (1, 1568, 768) and table.dtype == torch.float32
    angle = 5 / 10000 ** (2 / 768)  # position 5, dims 2 and 3 share the frequency index 1
    assert table[0, 5, 2].item() == pytest.approx(math.sin(angle), abs=1e-7)
    assert table[0, 5, 3].item() == pytest.approx(math.cos(angle), abs=1e-7)
    assert table[0, 0, 1].item() == 1.0 and table[0, 0, 0].item() == 0.0
    assert table[0, 1000, 767].item() == pytest.approx(math.cos(1000 / 10000 ** (766 / 768)), abs=1e-6)
    # fewer tokens (e.g. 8 of 16 frames at 224, t-major order) = the leading rows of the training table
    torch.testing.assert_close(sinusoid_table(784, 768), table[:, :784], rtol=0, atol=0)


def test_sincos_3d_table_hand_computed_entries():
    table = sincos_3d_table((8, 14, 14), 768)
    assert table.shape == (1, 1568, 768) and table.dtype == torch.float32
    t, i, j = 3, 5, 9  # token (t, row i, column j) sits at t*196 + i*14 + j
    row = table[0, t * 196 + i * 14 + j]
    # temporal part: 192 channels, frequency index k at channels k (sin) and 96 + k (cos)
    assert row[1].item() == pytest.approx(math.sin(t / 10000 ** (1 / 96)), abs=1e-7)
    assert row[96 + 1].item() == pytest.approx(math.cos(t / 10000 ** (1 / 96)), abs=1e-7)
    # spatial part: 288 channels for the column j, then 288 for the row i (each 144 sin + 144 cos)
    assert row[192 + 2].item() == pytest.approx(math.sin(j / 10000 ** (2 / 144)), abs=1e-7)
    assert row[192 + 144 + 2].item() == pytest.approx(math.cos(j / 10000 ** (2 / 144)), abs=1e-7)
    assert row[480 + 7].item() == pytest.approx(math.sin(i / 10000 ** (7 / 144)), abs=1e-7)
    assert row[480 + 144 + 7].item() == pytest.approx(math.cos(i / 10000 ** (7 / 144)), abs=1e-7)


# ---------------------------------------------------------------- full-size models: published key names

def meta_state(name):
    with torch.device("meta"):
        model = build_vit(name)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}, model


def test_videomae_base_keys():
    sd, model = meta_state("vit_b_videomae")
    assert sd["patch_embed.proj.weight"] == (768, 3, 2, 16, 16) and sd["patch_embed.proj.bias"] == (768,)
    assert sd["blocks.0.attn.qkv.weight"] == (2304, 768) and "blocks.0.attn.qkv.bias" not in sd
    assert sd["blocks.11.attn.q_bias"] == sd["blocks.11.attn.v_bias"] == (768,) and "blocks.0.attn.k_bias" not in sd
    assert sd["blocks.5.attn.proj.weight"] == (768, 768) and sd["blocks.5.mlp.fc1.weight"] == (3072, 768)
    assert sd["blocks.5.mlp.fc2.weight"] == (768, 3072) and sd["blocks.0.norm2.bias"] == (768,)
    assert sd["fc_norm.weight"] == (768,) and "blocks.12.norm1.weight" not in sd
    assert not any(k.startswith(("pos_embed", "norm.", "head", "cls_token")) or "gamma" in k for k in sd)
    assert sum(math.prod(s) for s in sd.values()) == 86_227_200  # 86.23 M
    assert model.blocks[0].norm1.eps == model.fc_norm.eps == 1e-6
    assert meta_state("vit_b_umt")[0]["patch_embed.proj.weight"] == (768, 3, 1, 16, 16)
    assert meta_state("vit_b_mvd")[0] == sd  # MVD's table is generated, not a parameter


def test_timesformer_base_keys():
    sd, model = meta_state("vit_b_timesformer")
    assert sd["patch_embed.proj.weight"] == (768, 3, 16, 16) and sd["cls_token"] == (1, 1, 768)
    assert sd["pos_embed"] == (1, 197, 768) and sd["time_embed"] == (1, 8, 768)
    for part in ("attn", "temporal_attn"):
        assert sd[f"blocks.0.{part}.qkv.weight"] == (2304, 768) and sd[f"blocks.0.{part}.qkv.bias"] == (2304,)
        assert sd[f"blocks.11.{part}.proj.weight"] == (768, 768)
    assert sd["blocks.0.temporal_fc.weight"] == (768, 768) and sd["blocks.3.temporal_norm1.weight"] == (768,)
    assert sd["norm.weight"] == (768,) and not any("norm3" in k or k.startswith("head") for k in sd)
    assert abs(sum(math.prod(s) for s in sd.values()) / 1e6 - 121.3) < 0.05
    assert model.norm.eps == model.blocks[0].temporal_norm1.eps == 1e-6


def test_clip_base_keys():
    sd, model = meta_state("vit_b_clip")
    assert sd["conv1.weight"] == (768, 3, 1, 16, 16) and "conv1.bias" not in sd
    assert sd["class_embedding"] == (768,) and sd["positional_embedding"] == (197, 768)
    assert sd["temporal_positional_embedding"] == (1, 8, 768)
    r = "transformer.resblocks.11."
    assert sd[r + "attn.in_proj_weight"] == (2304, 768) and sd[r + "attn.in_proj_bias"] == (2304,)
    assert sd[r + "attn.out_proj.weight"] == (768, 768) and sd[r + "mlp.c_fc.weight"] == (3072, 768)
    assert sd[r + "mlp.c_proj.weight"] == (768, 3072) and sd[r + "ln_1.weight"] == sd[r + "ln_2.bias"] == (768,)
    assert sd["ln_pre.weight"] == sd["ln_post.bias"] == (768,) and "proj" not in sd
    assert model.ln_post.eps == model.transformer.resblocks[0].ln_1.eps == 1e-5


def test_arch_table_fields():
    expected = {"vit_b_videomae": ("videomae", 2, 16, (0.485, 0.456, 0.406)),
                "vit_b_umt": ("videomae", 1, 8, (0.485, 0.456, 0.406)),
                "vit_b_mvd": ("videomae", 2, 16, (0.485, 0.456, 0.406)),
                "vit_b_timesformer": ("timesformer", 1, 8, (0.45, 0.45, 0.45)),
                "vit_b_clip": ("clip", 1, 8, (0.48145466, 0.4578275, 0.40821073))}
    for name, (family, stride, frames, mean) in expected.items():
        fields = VIT_ARCHS[name][1]
        assert (fields["family"], fields["temporal_stride"], fields["default_frames"], fields["mean"]) == (family, stride, frames, mean)
        assert fields["feature_dim"] == 768 and fields["spatial_stride"] == 16 and fields["default_crop"] == 224
        tiny = VIT_ARCHS[name.replace("vit_b_", "vit_tiny_")][1]
        assert tiny["family"] == family and tiny["temporal_stride"] == stride and tiny["feature_dim"] == 64


@pytest.mark.parametrize("name", TINY_NAMES)
def test_registry_fields_satisfy_the_backbone_contract(name):
    """The fields are register_backbone's keyword arguments, and the module honours the spec they make."""
    builder, fields = VIT_ARCHS[name]
    model = builder()
    model.spec = BackboneSpec(name=name, builder=builder, **fields)
    frames = 2 * fields["temporal_stride"]
    assert check_backbone_contract(model, frames=frames, crop=32, batch=2) == ((2, 64), (2, 64, 2, 2, 2))


def test_full_size_single_forward():
    torch.manual_seed(0)
    model = build_vit("vit_b_videomae").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 2, 32, 32))
    assert out.shape == (1, 768) and torch.isfinite(out).all()


def test_position_tables_bit_equal_to_the_published_functions_at_full_size():
    assert torch.equal(sinusoid_table(1568, 768)[0].double(), published_sinusoid(1568, 768))
    assert torch.equal(sincos_3d_table((8, 14, 14), 768)[0].double(), published_sincos_3d(8, 14, 14, 768))
