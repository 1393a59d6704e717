"""The decoder's elementwise chains as autograd functions that save their inputs, not their intermediates.

Autograd keeps every intermediate of a chain such as RMSNorm -> scale -> shift or q-norm -> rotary
for backward: four to five activation-sized tensors per chain where the input and a [.., 1] inverse
norm suffice. Each function here runs exactly the forward ops of the plain module code (so outputs
are bit-identical, the golden and parity tests hold unchanged) and recomputes the cheap
intermediates in a hand-written backward. Measured with bench/vs_reference.py (tensor peak).

Gradient formulas (x̂ = x * r, r = rsqrt(mean(x²) + eps), y = w * x̂):
  dx = r * (dx̂ - x̂ * mean(dx̂ * x̂)),  dx̂ = dy * w,  dw = Σ dy * x̂.
Rotary: y = n * cos + rot(n) * sin with rot(a, b) = (-b, a), so dn = dy * cos + rot^T(dy * sin),
rot^T(g1, g2) = (g2, -g1). SwiGLU: y = silu(g) * u, dg = silu'(g) * dy * u (aten's silu_backward), du = dy * silu(g).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in at least fp32 (bf16/fp16 widened, as Qwen3's RMSNorm does; fp64 kept, for gradcheck)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _normalise(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(x̂ in x's dtype, r in at least fp32), with the plain RMSNorm's op order and rounding."""
    x32 = _wide(x)
    r = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (x32 * r).to(x.dtype), r


def _norm_backward(x: torch.Tensor, r: torch.Tensor, d_normed: torch.Tensor) -> torch.Tensor:
    """dx of x̂ = x * r given dx̂ (computed in fp32, returned in x's dtype).

    r * (dx̂ - x̂ * mean(dx̂ * x̂)) in place on x̂'s buffer: the same roundings as the out-of-place
    expression (negation is exact, + and * commute), two activation-sized temporaries fewer.
    """
    normed = _wide(x) * r
    d32 = _wide(d_normed)
    dot = (d32 * normed).mean(-1, keepdim=True)
    return normed.mul_(dot).neg_().add_(d32).mul_(r).to(x.dtype)


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to a parameter's shape."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    dims = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(dims, keepdim=True) if dims else grad  # sum(()) would sum every dim


class _RMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        normed, r = _normalise(x, eps)
        ctx.save_for_backward(x, weight, r)
        return weight * normed

    @staticmethod
    def backward(ctx, grad):
        x, weight, r = ctx.saved_tensors
        d_weight = None
        if ctx.needs_input_grad[1]:
            d_weight = _reduce_to(grad * (_wide(x) * r).to(x.dtype), weight.shape)
        return _norm_backward(x, r, grad * weight), d_weight, None


class _NormModulate(torch.autograd.Function):
    """RMSNorm(h) * (1 + scale) + shift: the adaLN input of a DiT sub-block."""

    @staticmethod
    def forward(ctx, h, weight, eps, scale, shift):
        normed, r = _normalise(h, eps)
        ctx.save_for_backward(h, weight, r, scale)
        return (weight * normed) * (1 + scale) + shift

    @staticmethod
    def backward(ctx, grad):
        h, weight, r, scale = ctx.saved_tensors
        d_weight = d_scale = None
        d_weighted = grad * (1 + scale)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[3]:  # a frozen norm and adaLN skip x̂ entirely
            normed = (_wide(h) * r).to(h.dtype)
            d_weight = _reduce_to(d_weighted * normed, weight.shape) if ctx.needs_input_grad[1] else None
            d_scale = _reduce_to(grad * (weight * normed), scale.shape) if ctx.needs_input_grad[3] else None
        d_shift = _reduce_to(grad, scale.shape) if ctx.needs_input_grad[4] else None  # shift is scale's shape
        return _norm_backward(h, r, d_weighted.mul_(weight)), d_weight, None, d_scale, d_shift


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def _rotate_half_transposed(g: torch.Tensor) -> torch.Tensor:
    half = g.shape[-1] // 2
    return torch.cat([g[..., half:], -g[..., :half]], dim=-1)


class _NormRope(torch.autograd.Function):
    """Rotary embedding of the RMS-normed heads x [B, L, H, hd] with cos/sin [L, 1, hd]."""

    @staticmethod
    def forward(ctx, x, weight, eps, cos, sin):
        normed, r = _normalise(x, eps)
        ctx.save_for_backward(x, weight, r, cos, sin)
        heads = weight * normed
        return heads * cos + _rotate_half(heads) * sin

    @staticmethod
    def backward(ctx, grad):
        x, weight, r, cos, sin = ctx.saved_tensors
        d_heads = grad * cos + _rotate_half_transposed(grad * sin)
        d_weight = None
        if ctx.needs_input_grad[1]:
            d_weight = _reduce_to(d_heads * (_wide(x) * r).to(x.dtype), weight.shape)
        return _norm_backward(x, r, d_heads * weight), d_weight, None, None, None


class _SwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up):
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad):
        gate, up = ctx.saved_tensors
        d_up = grad * F.silu(gate) if ctx.needs_input_grad[1] else None
        # aten's fused silu backward: one pass, no gate-sized temporaries beside its output
        d_gate = torch.ops.aten.silu_backward(grad * up, gate) if ctx.needs_input_grad[0] else None
        return d_gate, d_up


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return _RMSNorm.apply(x, weight, eps)


def norm_modulate(h: torch.Tensor, weight: torch.Tensor, eps: float, scale: torch.Tensor,
                  shift: torch.Tensor) -> torch.Tensor:
    return _NormModulate.apply(h, weight, eps, scale, shift)


def norm_rope(x: torch.Tensor, weight: torch.Tensor, eps: float, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, L, H, hd] -> normed and rotated, same shape; cos/sin [L, hd]."""
    return _NormRope.apply(x, weight, eps, cos[:, None], sin[:, None])


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return _SwiGLU.apply(gate, up)
