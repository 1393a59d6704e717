"""Sliding-window self-attention computed on bands of the sequence instead of a dense masked matrix.

A dense masked SDPA spends L x L work on a layer whose queries each see only 2w + 1 keys. Here
the queries are cut into blocks of `w`; block n attends to the 3w keys [n*w - w, n*w + 2w), with the
same additive mask (0 / finfo.min) the dense path uses restricted to that band. Every key a query may
see lies inside its band and every key outside it would get weight exp(finfo.min - max) = 0, so the
result equals the dense one up to float summation order (measured: tests/model/test_banded.py).
Work and memory grow linearly with the length instead of quadratically; the key/value bands are
overlapping views of one padded copy (for a batch of one; larger batches materialise them), so SDPA keeps 1x
the keys for backward, not 3x.

One exception, irrelevant to the loss: a padded query (honor_padding) whose whole window is padding
gets uniform weights over its band rather than over the whole row. Valid queries always see
themselves, so their outputs never differ; padded positions are masked out of the loss and out of
every valid query's keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class BandedMask:
    """The band geometry of one sliding-window layer kind, and its additive mask per block."""

    length: int  # L, the real sequence length
    reach: int  # keys a query may see on each side (window, or window - 1 under the flash convention)
    mask: torch.Tensor  # additive [B|1, blocks, 1, reach, 3 * reach]: queries per block = reach

    @property
    def blocks(self) -> int:
        return self.mask.shape[1]


def banded_mask(length: int, reach: int, *, dtype: torch.dtype, device: torch.device,
                key_valid: torch.Tensor | None = None) -> BandedMask:
    """Mask of the band attention where query i sees key j iff |i - j| <= reach and key j is valid."""
    if reach < 1:
        raise ValueError(f"a band needs a reach of at least 1 key, got {reach}")
    block = reach
    blocks = -(-length // block)
    span = 3 * block
    q = torch.arange(block, device=device)[:, None]
    k = torch.arange(span, device=device)[None, :]
    in_window = (k >= q) & (k <= q + 2 * reach)  # key local k is global n*block - reach + k
    starts = torch.arange(blocks, device=device)[:, None, None] * block - reach
    key_index = starts + k[None]  # [blocks, 1, span]
    allowed = in_window[None] & (key_index >= 0) & (key_index < length)  # [blocks, block, span]
    allowed = allowed[None]
    if key_valid is not None:
        valid = F.pad(key_valid.to(device=device).bool(), (reach, blocks * block - length + reach))
        allowed = allowed & valid.unfold(1, span, block)[:, :, None, :]  # [B, blocks, block, span]
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=device)
    zero = torch.tensor(0.0, dtype=dtype, device=device)
    return BandedMask(length, reach, torch.where(allowed, zero, blocked)[:, :, None])


def banded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, band: BandedMask,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """SDPA of q [B, H, L, hd] over k, v [B, Hkv, L, hd] inside `band`; returns [B, H, L, hd]."""
    batch, heads, length, head_dim = q.shape
    kv_heads, block, blocks = k.shape[1], band.reach, band.blocks
    padded, span = blocks * block, 3 * block
    q_blocks = F.pad(q, (0, 0, 0, padded - length)).view(batch, heads, blocks, block, head_dim).transpose(1, 2)

    def bands(x: torch.Tensor) -> torch.Tensor:  # [B, Hkv, L, hd] -> [B*blocks, Hkv, span, hd]
        # keys of block n are blocks n-1, n, n+1 of the sequence padded by one block on each side:
        # overlapping windows of one padded copy, a view (no 3x copy; a batch of one stays a view)
        x = F.pad(x, (0, 0, block, padded - length + block)).unfold(2, span, block)  # [B, Hkv, blocks, hd, span]
        return x.transpose(-1, -2).transpose(1, 2).reshape(batch * blocks, kv_heads, span, head_dim)

    mask = band.mask.expand(batch, blocks, 1, block, span).reshape(batch * blocks, 1, block, span)
    out = masked_sdpa(q_blocks.reshape(batch * blocks, heads, block, head_dim), bands(k), bands(v), mask, dropout_p)
    out = out.view(batch, blocks, heads, block, head_dim).transpose(1, 2).reshape(batch, heads, padded, head_dim)
    return out[:, :, :length]


def masked_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                dropout_p: float = 0.0) -> torch.Tensor:
    """SDPA with an additive mask and grouped kv heads (2h, 2h+1 share kv head h).

    On CPU `enable_gqa` reads the shared heads in place. CUDA's memory-efficient kernel takes an
    additive mask but not GQA (with both it falls back to the math kernel), so there the kv heads
    are expanded instead.
    """
    groups = q.shape[1] // k.shape[1]
    if groups > 1 and q.device.type != "cpu":
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=dropout_p,
                                          enable_gqa=groups > 1 and q.device.type == "cpu")
