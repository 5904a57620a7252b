"""TimeSformer divided space-time ViT (the SVT backbone).

Per-frame Conv2d patches, a cls token, learned spatial (``pos_embed``, with a cls slot) and temporal
(``time_embed``) position embeddings, both resized by nearest interpolation when the input grid differs from
the one they were sized for (the original tests the token count instead of the grid; the two differ only for
a non-square grid with as many patches as the square one). Each block: temporal attention over the frames of every patch -> ``temporal_fc``
-> residual; spatial attention within each frame with the cls token copied to every frame and its outputs
averaged back; MLP. Patch tokens are kept in (h w t) order. Pooled feature = ``norm`` of the cls token.
Module names equal the published TimeSformer/SVT keys (``blocks.i.temporal_fc``, ``time_embed`` ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from severe.models.vit_common import (
    DropPath,
    Mlp,
    check_clip,
    drop_path_rates,
    grid_to_map,
    multihead_attention,
    run_blocks,
    trunc_normal_init,
)

LN_EPS = 1e-6


class PatchEmbed2d(nn.Module):
    """patch x patch Conv2d applied to every frame."""

    def __init__(self, embed_dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x T x H x W -> B x H' x W' x T x D."""
        b, c, t, h, w = x.shape
        y = self.proj(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B T) x D x H' x W'
        return y.view(b, t, *y.shape[1:]).permute(0, 3, 4, 1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a full qkv bias."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(multihead_attention(self.qkv(x), self.num_heads))


class DividedBlock(nn.Module):
    """Temporal attention + ``temporal_fc``, then spatial attention with a shared cls token, then MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float, qkv_bias: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.temporal_norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias)
        self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """x: B x (1 + S*T) x D, cls first, then patches in (s t) order with S = H'*W'."""
        b, n, d = x.shape
        s = (n - 1) // t
        cls, patches = x[:, :1], x[:, 1:]
        # temporal: attend over the T frames of each spatial position
        xt = patches.reshape(b * s, t, d)
        res = self.drop_path(self.temporal_attn(self.temporal_norm1(xt)))
        xt = patches + self.temporal_fc(res.reshape(b, s * t, d))
        # spatial: attend within each frame, the cls token joins every frame
        xs = xt.reshape(b, s, t, d).transpose(1, 2).reshape(b * t, s, d)
        xs = torch.cat((cls.expand(b, t, d).reshape(b * t, 1, d), xs), 1)
        res = self.drop_path(self.attn(self.norm1(xs)))
        res_cls = res[:, 0].reshape(b, t, d).mean(1, keepdim=True)
        res_patches = res[:, 1:].reshape(b, t, s, d).transpose(1, 2).reshape(b, s * t, d)
        x = torch.cat((cls + res_cls, xt + res_patches), 1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformer(nn.Module):
    """Divided space-time ViT. ``img_size`` and ``num_frames`` size the learned position embeddings.

    ``forward``: B x 3 x T x H x W -> B x D = ``norm`` of the cls token.
    ``forward_features``: ``norm``-ed patch tokens (cls excluded) as B x D x T x H/16 x W/16.
    """

    no_weight_decay_keys = frozenset({"pos_embed", "cls_token", "time_embed"})

    def __init__(self, arch: str = "vit_b_timesformer", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, patch_size: int = 16, img_size: int = 224, num_frames: int = 8,
                 qkv_bias: bool = True, drop_path_rate: float = 0.0, grad_checkpointing: bool = False) -> None:
        super().__init__()
        self.arch = arch
        self.feature_dim = embed_dim
        self.patch_size = patch_size
        self.pos_grid = img_size // patch_size
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = PatchEmbed2d(embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid ** 2 + 1, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.blocks = nn.ModuleList(DividedBlock(embed_dim, num_heads, mlp_ratio, p, qkv_bias)
                                    for p in drop_path_rates(drop_path_rate, depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(trunc_normal_init)
        for block in self.blocks[1:]:  # TimeSformer starts every temporal branch but the first at zero
            nn.init.zeros_(block.temporal_fc.weight)
            nn.init.zeros_(block.temporal_fc.bias)

    def spatial_pos(self, h: int, w: int) -> torch.Tensor:
        """H'*W' x D spatial position embeddings, nearest-resized from the square training grid if needed."""
        table = self.pos_embed[0, 1:]
        if (h, w) == (self.pos_grid, self.pos_grid):
            return table
        grid = table.T.reshape(1, -1, self.pos_grid, self.pos_grid)
        return F.interpolate(grid, size=(h, w), mode="nearest").flatten(2)[0].T

    def temporal_pos(self, t: int) -> torch.Tensor:
        """T x D temporal position embeddings, nearest-resized if T differs from ``num_frames``."""
        table = self.time_embed
        if t != table.shape[1]:
            table = F.interpolate(table.transpose(1, 2), size=t, mode="nearest").transpose(1, 2)
        return table[0]

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Clip -> (B x (1 + H'W'T) x D normed tokens, cls first then (h w t) order, (T, H', W'))."""
        grid = check_clip(x, self.arch, 1, self.patch_size)
        t, h, w = grid
        x = self.patch_embed(x)  # B x H' x W' x T x D
        pos = self.spatial_pos(h, w).reshape(h, w, 1, -1) + self.temporal_pos(t).reshape(1, 1, t, -1)
        x = (x + pos).flatten(1, 3)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = run_blocks(self.blocks, torch.cat((cls, x), 1), self.grad_checkpointing, t)
        return self.norm(x), grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens, grid = self.tokens(x)
        return grid_to_map(tokens[:, 1:], grid, time_major=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x)[0][:, 0]
