"""Masks in the official additive convention, window conventions, SDPA against an explicit softmax."""

from __future__ import annotations

import math

import pytest
import torch

from acetune.model.layers import Attention
from acetune.model.masks import AttentionOptions, additive_mask, window_allowed


def test_eager_window_is_inclusive_and_bidirectional():
    allowed = window_allowed(10, 10, 2, "eager", torch.device("cpu"))
    assert allowed[5].nonzero().flatten().tolist() == [3, 4, 5, 6, 7]
    assert torch.equal(allowed, allowed.T)


def test_flash_window_is_one_narrower_and_only_past_the_window():
    allowed = window_allowed(10, 10, 2, "flash", torch.device("cpu"))
    assert allowed[5].nonzero().flatten().tolist() == [4, 5, 6]
    assert window_allowed(2, 2, 2, "flash", torch.device("cpu")) is None  # key length <= window: no window
    assert window_allowed(3, 3, 2, "eager", torch.device("cpu")) is None  # window covers everything


def test_unknown_window_convention_is_refused():
    with pytest.raises(ValueError, match="window_convention"):
        AttentionOptions(window_convention="wide")


def test_mask_uses_finfo_min_not_inf():
    mask = additive_mask(4, 4, dtype=torch.float32, device=torch.device("cpu"),
                         key_valid=torch.tensor([[1, 1, 0, 0]]))
    assert mask.shape == (1, 1, 1, 4)  # broadcast over queries
    assert mask.min().item() == torch.finfo(torch.float32).min
    assert torch.isfinite(mask).all()
    assert additive_mask(4, 4, dtype=torch.float32, device=torch.device("cpu"),
                         key_valid=torch.ones(1, 4)) is None


def reference_attention(attn: Attention, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Eager attention written out: scores + additive mask, fp32 softmax, GQA by repeat-interleave."""
    b, length, _ = x.shape
    q = attn.q_norm(attn.q_proj(x).view(b, length, attn.num_heads, attn.head_dim)).transpose(1, 2)
    k = attn.k_norm(attn.k_proj(x).view(b, length, attn.num_kv_heads, attn.head_dim)).transpose(1, 2)
    v = attn.v_proj(x).view(b, length, attn.num_kv_heads, attn.head_dim).transpose(1, 2)
    groups = attn.num_heads // attn.num_kv_heads
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    return attn.o_proj((weights @ v).transpose(1, 2).reshape(b, length, -1)), weights


def test_fully_masked_row_gets_uniform_weights_and_stays_finite():
    """A padded query whose whole window is padding attends uniformly over the row, as the official code."""
    torch.manual_seed(0)
    attn = Attention(32, 4, 2, 8, 1e-6).eval()
    x = torch.randn(1, 12, 32)
    key_valid = torch.tensor([[1] * 3 + [0] * 9])
    mask = additive_mask(12, 12, dtype=torch.float32, device=torch.device("cpu"), key_valid=key_valid, window=2)
    with torch.no_grad():
        ours = attn(x, mask=mask)
        expected, weights = reference_attention(attn, x, mask)
    assert torch.isfinite(ours).all()
    # query 11 sees keys 9..11 only, all padding -> uniform over all 12 keys
    assert torch.allclose(weights[0, :, 11], torch.full((4, 12), 1 / 12))
    assert torch.allclose(ours, expected, atol=1e-6)


def test_gqa_without_mask_matches_reference():
    torch.manual_seed(1)
    attn = Attention(32, 4, 2, 8, 1e-6).eval()
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        assert torch.allclose(attn(x), reference_attention(attn, x, None)[0], atol=1e-6)
