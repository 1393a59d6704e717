"""The fused elementwise functions: forward bit-identical to the plain op chain, backward exact.

Gradients are checked by `torch.autograd.gradcheck` in float64 (finite differences), and against
autograd through the plain chain in fp32.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from acetune.model.fused import norm_modulate, norm_rope, rms_norm, swiglu

EPS = 1e-6


def _plain_norm(x, weight):
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def _cos_sin(length, dim, dtype):
    angles = torch.arange(length, dtype=dtype)[:, None] * torch.linspace(0.01, 1.0, dim // 2, dtype=dtype)[None]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


PLAIN = {
    "rms_norm": lambda x, w, s, t: _plain_norm(x, w),
    "norm_modulate": lambda x, w, s, t: _plain_norm(x, w) * (1 + s) + t,
    "swiglu": lambda x, w, s, t: F.silu(x) * (x * 0.5 + 1.0),
}
FUSED = {
    "rms_norm": lambda x, w, s, t: rms_norm(x, w, EPS),
    "norm_modulate": lambda x, w, s, t: norm_modulate(x, w, EPS, s, t),
    "swiglu": lambda x, w, s, t: swiglu(x, x * 0.5 + 1.0),
}


def _inputs(dtype, requires_grad=True):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 8, generator=gen, dtype=dtype)
    w = torch.randn(8, generator=gen, dtype=dtype)
    s, t = (torch.randn(2, 1, 8, generator=gen, dtype=dtype) * 0.1 for _ in range(2))
    return [v.requires_grad_(requires_grad) for v in (x, w, s, t)]


@pytest.mark.parametrize("name", list(FUSED))
def test_forward_is_bit_identical_and_gradients_are_exact(name):
    inputs = _inputs(torch.float32)
    assert torch.equal(FUSED[name](*inputs), PLAIN[name](*inputs))
    weights = torch.randn(2, 7, 8)
    (FUSED[name](*inputs) * weights).sum().backward()
    fused_grads = [v.grad.clone() if v.grad is not None else None for v in inputs]
    for v in inputs:
        v.grad = None
    (PLAIN[name](*inputs) * weights).sum().backward()
    for fused, plain in zip(fused_grads, (v.grad for v in inputs)):
        assert (fused is None) == (plain is None)
        if fused is not None:
            assert torch.allclose(fused, plain, rtol=1e-5, atol=1e-6)
    assert torch.autograd.gradcheck(FUSED[name], tuple(_inputs(torch.float64)))


def test_norm_rope_matches_norm_then_rotary():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 3, 8, generator=gen).requires_grad_()  # [B, L, H, hd]
    w = torch.randn(8, generator=gen).requires_grad_()
    cos, sin = _cos_sin(6, 8, torch.float32)
    heads = _plain_norm(x, w).transpose(1, 2)  # as the attention had it: [B, H, L, hd]
    plain = heads * cos + _rotate_half(heads) * sin
    assert torch.equal(norm_rope(x, w, EPS, cos, sin).transpose(1, 2), plain)
    x64, w64 = (v.detach().double().requires_grad_() for v in (x, w))
    cos64, sin64 = _cos_sin(6, 8, torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: norm_rope(a, b, EPS, cos64, sin64), (x64, w64))
