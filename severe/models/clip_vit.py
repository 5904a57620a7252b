"""CLIP image ViT-B/16 inflated to video (ViCLIP's vision tower): Conv3d patches without bias, class token,
learned spatial and temporal position embeddings, ``ln_pre``, joint attention over 1 + H'W'T' tokens in
(h w t) order, QuickGELU MLPs, PyTorch-default LayerNorm eps (1e-5). Pooled feature = ``ln_post`` of the
class token (768-d; the 512-d text projection ``proj`` is not part of the backbone).

Module names equal CLIP/ViCLIP vision keys (``conv1``, ``class_embedding``,
``transformer.resblocks.i.attn.in_proj_weight`` ...).

Input grids that differ from the embeddings' grid: the spatial table is resized bicubically (as ViCLIP's
loader does); the temporal table is truncated for fewer frames and zero-padded for more (ViCLIP's
``load_temp_embed_with_mismatch`` default), and a single frame gets its mean (ViCLIP's forward).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from severe.models.vit_common import DropPath, check_clip, drop_path_rates, grid_to_map, multihead_attention, run_blocks

LN_EPS = 1e-5


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), CLIP's activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class PackedAttention(nn.Module):
    """``nn.MultiheadAttention``'s parameters (``in_proj_weight``, ``in_proj_bias``, ``out_proj``), batch
    first, computed with scaled_dot_product_attention."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        return self.out_proj(multihead_attention(qkv, self.num_heads))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.ln_1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = PackedAttention(dim, num_heads)
        self.ln_2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(dim, hidden)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(hidden, dim))]))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.ln_1(x)))
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float, drop_path_rate: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(dim, num_heads, mlp_ratio, p)
                                       for p in drop_path_rates(drop_path_rate, depth))

    def forward(self, x: torch.Tensor, grad_checkpointing: bool = False) -> torch.Tensor:
        return run_blocks(self.resblocks, x, grad_checkpointing)


class CLIPVideoViT(nn.Module):
    """``forward``: B x 3 x T x H x W -> B x D = ``ln_post`` of the class token.
    ``forward_features``: ``ln_post``-ed patch tokens (class token excluded) as B x D x T/tubelet x H/16 x W/16."""

    no_weight_decay_keys = frozenset({"class_embedding", "positional_embedding", "temporal_positional_embedding"})

    def __init__(self, arch: str = "vit_b_clip", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, patch_size: int = 16, tubelet: int = 1, img_size: int = 224,
                 num_frames: int = 8, drop_path_rate: float = 0.0, grad_checkpointing: bool = False) -> None:
        super().__init__()
        self.arch = arch
        self.feature_dim = embed_dim
        self.tubelet, self.patch_size = tubelet, patch_size
        self.pos_grid = img_size // patch_size
        self.grad_checkpointing = grad_checkpointing
        scale = embed_dim ** -0.5
        self.conv1 = nn.Conv3d(3, embed_dim, kernel_size=(tubelet, patch_size, patch_size),
                               stride=(tubelet, patch_size, patch_size), bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(embed_dim))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.pos_grid ** 2 + 1, embed_dim))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
        self.ln_pre = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.transformer = Transformer(embed_dim, depth, num_heads, mlp_ratio, drop_path_rate)
        self.ln_post = nn.LayerNorm(embed_dim, eps=LN_EPS)

    def spatial_pos(self, h: int, w: int) -> torch.Tensor:
        """H'*W' x D spatial position embeddings, bicubically resized from the square grid if needed."""
        table = self.positional_embedding[1:]
        if (h, w) == (self.pos_grid, self.pos_grid):
            return table
        grid = table.T.reshape(1, -1, self.pos_grid, self.pos_grid)
        return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False).flatten(2)[0].T

    def temporal_pos(self, t: int) -> torch.Tensor:
        """T x D temporal embeddings: the mean for one frame, else the first T rows, zero rows beyond."""
        table = self.temporal_positional_embedding[0]
        if t == 1:
            return table.mean(0, keepdim=True)
        if t <= table.shape[0]:
            return table[:t]
        return torch.cat((table, table.new_zeros(t - table.shape[0], table.shape[1])))

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Clip -> (B x (1 + H'W'T') x D ``ln_post``-ed tokens, class first then (h w t) order, grid)."""
        grid = check_clip(x, self.arch, self.tubelet, self.patch_size)
        t, h, w = grid
        x = self.conv1(x).permute(0, 3, 4, 2, 1)  # B x H' x W' x T' x D
        pos = self.spatial_pos(h, w).reshape(h, w, 1, -1) + self.temporal_pos(t).reshape(1, 1, t, -1)
        x = (x + pos).flatten(1, 3)
        cls = (self.class_embedding + self.positional_embedding[0]).to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat((cls, x), 1))
        x = self.transformer(x, self.grad_checkpointing)
        return self.ln_post(x), grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens, grid = self.tokens(x)
        return grid_to_map(tokens[:, 1:], grid, time_major=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x)[0][:, 0]
