"""Sliding-window attention on bands equals the dense masked attention it replaces.

BAND_ATOL: the band changes only the summation order of each softmax row (keys outside the band
get weight exactly 0 either way). Measured max |Δ| at valid positions, fp32, one CPU: 4.8e-7
(750 tokens), 4.2e-7 (1500), 3.6e-7 (20, window 4); 2e-6 is ~4x that and far below a wrong band
edge (an off-by-one window moves outputs by > 1e-2, checked below).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from golden_tolerances import FORWARD_ATOL

from acetune.model import masks
from acetune.model.banded import BandedMask, banded_attention, banded_mask
from acetune.model.masks import additive_mask, self_attention_mask

BAND_ATOL = 2e-6


def _qkv(length: int, seed: int = 0, heads: int = 8, kv_heads: int = 4, batch: int = 2):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, length, 16, generator=gen)
    k, v = (torch.randn(batch, kv_heads, length, 16, generator=gen) for _ in range(2))
    return q, k, v


@pytest.mark.parametrize(("length", "window", "convention"), [(20, 4, "eager"), (37, 4, "flash"), (300, 16, "eager"),
                                                               (301, 16, "flash")])
def test_band_equals_dense_at_every_valid_position(length, window, convention):
    q, k, v = _qkv(length)
    key_valid = torch.ones(2, length, dtype=torch.bool)
    key_valid[1, 2 * length // 3:] = False  # the second sample is padded
    dense_mask = additive_mask(length, length, dtype=q.dtype, device=q.device, key_valid=key_valid,
                               window=window, convention=convention)
    dense = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1),
                                           attn_mask=dense_mask)
    reach = window if convention == "eager" else window - 1
    band = banded_attention(q, k, v, banded_mask(length, reach, dtype=q.dtype, device=q.device, key_valid=key_valid))
    valid = key_valid[:, None, :, None].expand_as(band)
    assert (band - dense)[valid].abs().max() <= BAND_ATOL
    wrong = banded_attention(q, k, v, banded_mask(length, reach + 1, dtype=q.dtype, device=q.device,
                                                  key_valid=key_valid))
    assert (wrong - dense)[valid].abs().max() > 1e-2  # the tolerance would catch an off-by-one band


def test_band_gradients_equal_dense_gradients():
    q, k, v = (t.requires_grad_() for t in _qkv(200, seed=1, batch=1))
    weights = torch.randn(1, 8, 200, 16)
    dense_mask = additive_mask(200, 200, dtype=q.dtype, device=q.device, window=8)
    (F.scaled_dot_product_attention(q, k, v, attn_mask=dense_mask, enable_gqa=True) * weights).sum().backward()
    dense_grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    (banded_attention(q, k, v, banded_mask(200, 8, dtype=q.dtype, device=q.device)) * weights).sum().backward()
    for grad, dense_grad in zip((q.grad, k.grad, v.grad), dense_grads):
        assert (grad - dense_grad).abs().max() <= BAND_ATOL


def test_a_batch_of_one_keeps_one_copy_of_the_keys_for_backward():
    """The bands overlap 3x; they are views of one padded copy, so SDPA saves 1x the keys, not 3x."""
    q, k, v = (t.requires_grad_() for t in _qkv(300, batch=1))
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        banded_attention(q, k, v, banded_mask(300, 16, dtype=q.dtype, device=q.device))
    padded_keys = k[0, :, 0].numel() * (300 + 2 * 16 + 4) * 4  # 19 blocks of 16 and a block each side
    # k and v saved as their padded copies (the 3x bands of a concatenation would be transient here)
    assert sorted(saved.values()).count(padded_keys) == 2


def test_band_is_chosen_only_where_it_pays_and_is_allowed():
    def mask(length, **kw):
        return self_attention_mask(length, dtype=torch.float32, device=torch.device("cpu"), window=4, **kw)

    assert isinstance(mask(25, banded=True), BandedMask)  # 25 > 6 * 4
    assert isinstance(mask(24, banded=True), torch.Tensor)  # not enough work skipped to pay
    assert isinstance(mask(200, banded=False), torch.Tensor)  # encoders: padded rows are read there
    assert mask(5, banded=True) is None  # the window restricts nothing


def _decoder_pair(golden_model, golden_inputs, frames: int):
    """The golden decoder's output on `frames` frames (tiled golden inputs), as the DiT runs it."""
    i = golden_inputs
    reps = -(-frames // i["hidden_states"].shape[1])

    def tiled(name):
        return i[name].repeat(1, reps, 1)[:, :frames]

    args = (tiled("hidden_states"), i["timestep"], i["timestep_r"], i["encoder_hidden_states"], tiled("context_latents"))
    with torch.no_grad():
        return golden_model.decoder(*args)


def test_decoder_with_bands_equals_decoder_without(golden_model, golden_inputs, monkeypatch):
    window = golden_model.config.sliding_window
    assert isinstance(self_attention_mask(200, dtype=torch.float32, device=torch.device("cpu"), window=window,
                                          banded=True), BandedMask)  # the first run below does take the band
    banded = _decoder_pair(golden_model, golden_inputs, 400)  # 200 patches, window 4: bands
    monkeypatch.setattr(masks, "BAND_MIN_RATIO", 10**9)
    dense = _decoder_pair(golden_model, golden_inputs, 400)
    assert (banded - dense).abs().max() <= BAND_ATOL


def test_golden_decoder_holds_on_bands(golden_model, golden_inputs, golden, monkeypatch):
    monkeypatch.setattr(masks, "BAND_MIN_RATIO", 1)  # 20 patches, window 4: force the band
    out = _decoder_pair(golden_model, golden_inputs, golden_inputs["hidden_states"].shape[1])
    assert (out - golden["out.decoder"]).abs().max() <= FORWARD_ATOL
