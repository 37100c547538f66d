"""The generator's cross-attention context, built as in ReViSE: ``[source; sep; VLM; sep; text]``.

Every condition reaches the denoiser through one context sequence at ``context_dim``:

- **source tokens**: a Conv3d patch embedding of the source video (``SourceAdapter``) plus factorised
  learned positions (time, row, column), so cross-attention knows *where* each source patch is;
- **VLM tokens**: learned queries cross-attending the internal VLM's last hidden states
  (``VLMAdapter``), a fixed number of tokens whatever the VLM's sequence length (ReViSE's adapter);
- **text tokens**: an embedding of the instruction's token ids with learned positions (``TextEmbedding``);
- two learned **separators** between the three parts.

Classifier-free guidance drops the VLM and text parts together (the source stays: an edit without its
instruction is "keep the source"), replacing them with learned null tokens of the same length, so a
conditioned and a dropped context have the same shape and can share one batch. A missing VLM
(``vlm_hidden=None``) uses the same null VLM tokens.
"""

from __future__ import annotations

import torch
from torch import nn


class SourceAdapter(nn.Module):
    """Conv3d patch embedding of the source video ``(B, 3, T, H, W)`` in [-1, 1] -> ``(B, N, dim)`` tokens."""

    def __init__(self, dim: int, patch_size: tuple[int, int, int], grid: tuple[int, int, int], in_channels: int = 3):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.grid = tuple(grid)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.pos_t = nn.Parameter(torch.randn(grid[0], dim) * 0.02)
        self.pos_h = nn.Parameter(torch.randn(grid[1], dim) * 0.02)
        self.pos_w = nn.Parameter(torch.randn(grid[2], dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(source)  # (B, dim, gt, gh, gw)
        if tuple(tokens.shape[2:]) != self.grid:
            raise ValueError(f"source gives a {tuple(tokens.shape[2:])} patch grid, the adapter expects {self.grid}")
        pos = self.pos_t[:, None, None] + self.pos_h[None, :, None] + self.pos_w[None, None, :]
        tokens = tokens.flatten(2).transpose(1, 2) + pos.reshape(1, -1, pos.shape[-1])
        return self.norm(tokens)


class VLMAdapter(nn.Module):
    """Learned queries over the VLM's hidden states ``(B, L, vlm_dim)`` -> ``(B, num_queries, dim)``.

    The hidden states go through an MLP to ``dim``; ``num_queries`` learned queries read them with one
    multi-head cross-attention (``mask`` ``(B, L)`` bool, True = real token, leaves padding out), then a
    residual MLP. Fixed output length keeps the context shape independent of the VLM's prompt length.
    """

    def __init__(self, vlm_dim: int, dim: int, num_queries: int, num_heads: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(vlm_dim), nn.Linear(vlm_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        kv = self.proj(hidden)
        q = self.queries.unsqueeze(0).expand(hidden.shape[0], -1, -1)
        padding = None if mask is None else ~mask.bool()
        out, _ = self.attn(q, kv, kv, key_padding_mask=padding, need_weights=False)
        out = out + q
        return self.norm(out + self.mlp(out))


class TextEmbedding(nn.Module):
    """Token ids ``(B, L)`` (``L <= max_len``) -> ``(B, L, dim)``: a learned table plus learned positions."""

    def __init__(self, vocab_size: int, dim: int, max_len: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.tokens(ids) + self.positions[: ids.shape[1]])


class ConditioningEncoder(nn.Module):
    """Builds the context ``[source; sep0; VLM; sep1; text]`` ``(B, N_src + 1 + Q + 1 + L, dim)``."""

    def __init__(self, *, dim: int, source_patch_size: tuple[int, int, int], source_grid: tuple[int, int, int],
                 vlm_dim: int, num_vlm_queries: int, vlm_heads: int, vocab_size: int, max_text_len: int,
                 source_channels: int = 3):
        super().__init__()
        self.source = SourceAdapter(dim, source_patch_size, source_grid, in_channels=source_channels)
        self.vlm = VLMAdapter(vlm_dim, dim, num_vlm_queries, vlm_heads)
        self.text = TextEmbedding(vocab_size, dim, max_text_len)
        self.separators = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.null_vlm = nn.Parameter(torch.randn(num_vlm_queries, dim) * 0.02)
        self.null_text = nn.Parameter(torch.randn(max_text_len, dim) * 0.02)

    def forward(self, source: torch.Tensor, text_ids: torch.Tensor, vlm_hidden: torch.Tensor | None = None,
                vlm_mask: torch.Tensor | None = None, drop: torch.Tensor | None = None) -> torch.Tensor:
        """``drop`` ``(B,)`` bool: where True, the VLM and text parts are replaced by their null tokens."""
        b = source.shape[0]
        src = self.source(source)
        null_vlm = self.null_vlm.unsqueeze(0).expand(b, -1, -1)
        vlm = null_vlm if vlm_hidden is None else self.vlm(vlm_hidden, vlm_mask)
        text = self.text(text_ids)
        if drop is not None:
            keep = (~drop.bool()).to(src.dtype).view(b, 1, 1)
            vlm = keep * vlm + (1 - keep) * null_vlm
            text = keep * text + (1 - keep) * self.null_text[: text.shape[1]].unsqueeze(0)
        sep = self.separators.unsqueeze(0).expand(b, -1, -1)
        return torch.cat([src, sep[:, :1], vlm, sep[:, 1:], text], dim=1)
