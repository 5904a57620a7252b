"""Building blocks shared by the ViT-B video backbones: attention core, MLP, drop path, block runner,
input checks and the fixed 1-D sinusoid position table."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from severe.errors import SevereError

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def multihead_attention(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """B x N x 3D packed [q; k; v] projections -> B x N x D softmax(q k^T / sqrt(d_head)) v, heads concatenated."""
    b, n, three_d = qkv.shape
    q, k, v = qkv.view(b, n, 3, num_heads, three_d // (3 * num_heads)).permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, n, three_d // 3)


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch per sample (first dim) with probability ``p`` in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """fc1 -> activation -> fc2 (timm names)."""

    def __init__(self, dim: int, hidden: int, act: Callable[[], nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Linearly increasing stochastic-depth rate per block, 0 for the first, ``rate`` for the last."""
    return [rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, grad_checkpointing: bool, *args) -> torch.Tensor:
    """Apply the blocks in order; with ``grad_checkpointing`` (and autograd on) recompute each block's
    activations in the backward pass instead of storing them."""
    use_ckpt = grad_checkpointing and torch.is_grad_enabled()
    for block in blocks:
        x = checkpoint(block, x, *args, use_reentrant=False) if use_ckpt else block(x, *args)
    return x


def check_clip(x: torch.Tensor, arch: str, tubelet: int, patch: int) -> tuple[int, int, int]:
    """Validate a B x 3 x T x H x W clip; return the token grid (T/tubelet, H/patch, W/patch)."""
    if x.ndim != 5 or x.shape[1] != 3:
        raise SevereError(f"{arch} expects a B x 3 x T x H x W clip, got shape {tuple(x.shape)}")
    _, _, t, h, w = x.shape
    if t % tubelet or h % patch or w % patch:
        raise SevereError(f"{arch} needs frames divisible by {tubelet} and height/width divisible by {patch}, "
                          f"got T={t}, H={h}, W={w}; change the clip length or crop size")
    return t // tubelet, h // patch, w // patch


@lru_cache(maxsize=16)
def _sinusoid_table_cpu(n: int, dim: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(torch.float32)[None]


def sinusoid_table(n: int, dim: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """1 x n x dim fixed position table over the flattened token index: entry (p, j) is
    sin(p / 10000^(2*floor(j/2)/dim)) for even j and cos(...) for odd j, computed in float64 and
    stored as float32 (as published), then cast to ``dtype``."""
    return _sinusoid_table_cpu(n, dim).to(device=device, dtype=dtype)


def _sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """len(pos) x dim: [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (dim/2)), k < dim/2 (float64)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angle = pos.to(torch.float64)[:, None] * omega[None]
    return torch.cat((torch.sin(angle), torch.cos(angle)), 1)


@lru_cache(maxsize=16)
def _sincos_3d_cpu(t: int, h: int, w: int, dim: int) -> torch.Tensor:
    if dim % 8:
        raise SevereError(f"the 3-D sin-cos position table needs a width divisible by 8, got {dim}")
    temporal = _sincos_1d(dim // 4, torch.arange(t))  # T x D/4
    spatial_dim = dim // 4 * 3
    jj = torch.arange(w).repeat(h)  # column index of position i*W + j
    ii = torch.arange(h).repeat_interleave(w)  # row index
    spatial = torch.cat((_sincos_1d(spatial_dim // 2, jj), _sincos_1d(spatial_dim // 2, ii)), 1)  # HW x 3D/4
    table = torch.cat((temporal[:, None].expand(t, h * w, -1), spatial[None].expand(t, h * w, -1)), 2)
    return table.reshape(1, t * h * w, dim).to(torch.float32)


def sincos_3d_table(grid: tuple[int, int, int], dim: int, device: torch.device | None = None,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """1 x T*H*W x dim fixed table in (t h w) order (MVD): the first dim/4 channels encode t, the next
    3dim/8 the column j, the last 3dim/8 the row i, each as [sin(p w_k), cos(p w_k)] with
    w_k = 10000^(-k/(n/2)) for an n-channel part; computed in float64, stored as float32, cast to ``dtype``."""
    return _sincos_3d_cpu(*grid, dim).to(device=device, dtype=dtype)


def trunc_normal_init(module: nn.Module) -> None:
    """timm ViT init: Linear weights truncated normal (std 0.02, cut at +-2), zero biases; LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def grid_to_map(tokens: torch.Tensor, grid: tuple[int, int, int], time_major: bool) -> torch.Tensor:
    """B x N x D tokens in (t h w) order (``time_major``) or (h w t) order -> B x D x T x H x W."""
    b, _, d = tokens.shape
    t, h, w = grid
    if time_major:
        return tokens.transpose(1, 2).reshape(b, d, t, h, w)
    return tokens.reshape(b, h, w, t, d).permute(0, 4, 3, 1, 2)
