"""VideoMAE-style ViT (VideoMAE, MVD, MGMAE, MME, EVEREST, SIGMA, UMT): joint space-time attention over
Conv3d tubelet tokens in (t h w) order, a fixed position table generated for the actual token grid (VideoMAE's
1-D sinusoid over the flattened token index, or MVD's 3-D sin-cos), q/v-only attention biases and mean
pooling followed by ``fc_norm``.

Module names equal the published VideoMAE finetuning keys (``patch_embed.proj``, ``blocks.i.attn.q_bias``,
``fc_norm`` ...); the position table is not a parameter, exactly as in those checkpoints.
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
    sincos_3d_table,
    sinusoid_table,
    trunc_normal_init,
)

LN_EPS = 1e-6
POSITION_TABLES = ("sinusoid_1d", "sincos_3d")


class TubeletEmbed(nn.Module):
    """Non-overlapping tubelet x patch x patch Conv3d -> B x N x D tokens, (t h w) order."""

    def __init__(self, embed_dim: int, tubelet: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class QVBiasAttention(nn.Module):
    """Multi-head self-attention whose packed qkv projection has biases for q and v only (k bias = 0)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)
        return self.proj(multihead_attention(qkv, self.num_heads))


class VideoMAEBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float, qkv_bias: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = QVBiasAttention(dim, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VideoMAEViT(nn.Module):
    """Joint space-time ViT with tubelet tokens and mean pooling.

    ``forward``: B x 3 x T x H x W -> B x D = ``fc_norm(mean of all tokens)``.
    ``forward_features``: last block's tokens as B x D x T/tubelet x H/16 x W/16 (no norm: the pooled
    feature's ``fc_norm`` normalises the mean, not each token).
    """

    no_weight_decay_keys = frozenset()  # the position table is not a parameter

    def __init__(self, arch: str = "vit_b_videomae", embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, tubelet: int = 2, patch_size: int = 16, qkv_bias: bool = True,
                 drop_path_rate: float = 0.0, grad_checkpointing: bool = False,
                 pos_table: str = "sinusoid_1d") -> None:
        super().__init__()
        if pos_table not in POSITION_TABLES:
            raise ValueError(f"pos_table must be one of {POSITION_TABLES}, got {pos_table!r}")
        self.arch = arch
        self.pos_table = pos_table
        self.feature_dim = embed_dim
        self.tubelet, self.patch_size = tubelet, patch_size
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = TubeletEmbed(embed_dim, tubelet, patch_size)
        self.blocks = nn.ModuleList(VideoMAEBlock(embed_dim, num_heads, mlp_ratio, p, qkv_bias)
                                    for p in drop_path_rates(drop_path_rate, depth))
        self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.apply(trunc_normal_init)

    def position_table(self, grid: tuple[int, int, int], device: torch.device | None = None,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
        """1 x N x D fixed position table for a (T', H', W') token grid."""
        if self.pos_table == "sincos_3d":
            return sincos_3d_table(grid, self.feature_dim, device, dtype)
        return sinusoid_table(grid[0] * grid[1] * grid[2], self.feature_dim, device, dtype)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Clip -> (B x N x D output tokens of the last block, (T', H', W') grid)."""
        grid = check_clip(x, self.arch, self.tubelet, self.patch_size)
        x = self.patch_embed(x)
        x = x + self.position_table(grid, x.device, x.dtype)
        return run_blocks(self.blocks, x, self.grad_checkpointing), grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens, grid = self.tokens(x)
        return grid_to_map(tokens, grid, time_major=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.tokens(x)
        return self.fc_norm(tokens.mean(1))
