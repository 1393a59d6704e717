"""A SwiGLU MLP that keeps only its input for backward and recomputes the rest there, in chunks.

The plain MLP keeps gate(x) and up(x) for SwiGLU's backward: 2 x intermediate_size values per token,
the largest activation of a decoder layer (70 of 249 MiB at 1500 frames, bench/vs_reference.py).
With `loop.recompute_mlp` the decoder's MLPs run through `recomputing_swiglu_mlp` instead: forward
keeps x and the weights; both passes work through a few hundred token rows at a time, backward
recomputing gate and up (two more matrix products per layer and step), so neither holds a
[tokens, intermediate] tensor of the whole sequence (a whole-sequence forward made the peak 4 %
higher at 3000 frames: the last layer's gate/up/act sit on top of every layer's saved activations).

Forward runs the plain MLP's ops on row chunks: equal to the plain MLP up to how the GEMM kernel
blocks rows (the small config's decoder output: bit-identical at 1500 and 3000 frames, 1.5e-6
apart at 750 on the CI CPU; one ulp apart on tiny shapes). Gradients differ from autograd's by
rounding only (dx is summed with addmm, weight gradients over chunks). Under autocast the products
run in the autocast dtype, as F.linear's would. tests/model/test_lean_mlp.py checks all of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

# Most rows per chunk; three [rows, intermediate] temporaries live at once. Measured on the small
# config (bench/vs_reference.py tensor peaks, MLP forward+backward times, 2-core CPU):
# - a layer that keeps its activations: 256 rows. Its chunk is a small part of the peak, and the MLP
#   costs +15-29 % time at 256 rows against +19-44 % at 64-128 (fewer, larger products);
# - a checkpointed layer: 64 rows. There the peak is one recomputed layer's backward, and its
#   MLP chunk is a large part of it (750 frames: peak 23.3 MiB at 256 rows, 21.1 MiB at 64).
CHUNK_ROWS = 256
CHECKPOINTED_CHUNK_ROWS = 64


def _chunks(rows: int, most: int) -> Iterator[slice]:
    """Row chunks of at most `most` rows, of equal size where possible (750 rows at 256: 3 x 250)."""
    size = -(-rows // -(-rows // most)) if rows else 1
    return (slice(start, min(start + size, rows)) for start in range(0, rows, size))


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype F.linear would compute in here: autocast's when it is on, else x's."""
    device = x.device.type
    autocast = torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)
    return torch.get_autocast_dtype(device) if autocast else x.dtype


def _autocast_off(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off for x's device (the meta device of the memory estimate has none)."""
    device = x.device.type
    if not torch.amp.is_autocast_available(device):
        return contextlib.nullcontext()
    return torch.autocast(device, enabled=False)


class _RecomputedSwiGLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gate_w, up_w, down_w, chunk_rows):
        dtype = _compute_dtype(x)
        ctx.dtype, ctx.shape, ctx.chunk_rows = dtype, x.shape, chunk_rows
        ctx.save_for_backward(x, gate_w, up_w, down_w)
        with _autocast_off(x):  # cast as autocast would, once, then plain products in that dtype
            rows = x.reshape(-1, x.shape[-1]).to(dtype)
            gate_w, up_w, down_w = (w.to(dtype) for w in (gate_w, up_w, down_w))
            out = rows.new_empty(rows.shape[0], down_w.shape[0])
            for part in _chunks(rows.shape[0], chunk_rows):
                # silu, then the product with up, in place: two chunk tensors live; the plain ops' values
                act = F.silu(F.linear(rows[part], gate_w), inplace=True).mul_(F.linear(rows[part], up_w))
                torch.mm(act, down_w.t(), out=out[part])
                del act  # before the next chunk's products
        return out.view(*x.shape[:-1], down_w.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, *weights = ctx.saved_tensors
        with _autocast_off(x):
            grads = _backward(ctx.dtype, x.reshape(-1, x.shape[-1]), weights,
                              grad.reshape(-1, grad.shape[-1]), ctx.needs_input_grad, ctx.chunk_rows)
        d_x, *d_weights = grads
        d_x = d_x.view(ctx.shape).to(x.dtype) if d_x is not None else None
        return d_x, *(d if d is None else d.to(w.dtype) for d, w in zip(d_weights, weights)), None


def _backward(dtype: torch.dtype, x: torch.Tensor, weights: list[torch.Tensor], grad: torch.Tensor,
              needs: tuple[bool, ...], chunk_rows: int) -> list[torch.Tensor | None]:
    """Gradients of x and the three weights, chunk by chunk, gate and up recomputed per chunk.

    Products run in `dtype` (autocast's); sums across products and chunks run in at least fp32, as
    autograd sums the plain MLP's gradients after autocast's casts back.
    """
    rows, grad = x.to(dtype), grad.to(dtype)
    gate_w, up_w, down_w = (w.to(dtype) for w in weights)
    wide = torch.promote_types(dtype, torch.float32)
    d_x = rows.new_zeros(rows.shape, dtype=wide) if needs[0] else None
    d_w = [w.new_zeros(w.shape, dtype=wide) if need else None for w, need in zip((gate_w, up_w, down_w), needs[1:])]
    for part in _chunks(rows.shape[0], chunk_rows):
        chunk, g_out = rows[part], grad[part]
        d_act, gate = torch.mm(g_out, down_w), F.linear(chunk, gate_w)
        if d_w[2] is not None:
            _add_product(d_w[2], g_out.t(), F.silu(gate) * F.linear(chunk, up_w))
        # up's branch first, then gate's: at most three [rows, intermediate] tensors live at once
        d_up = F.silu(gate).mul_(d_act)
        _add_products(d_x, d_w[1], part, d_up, up_w, chunk)
        del d_up
        d_act.mul_(F.linear(chunk, up_w))  # d_act * up, up dropped at once
        d_gate = torch.ops.aten.silu_backward(d_act, gate)  # one pass, as the plain SwiGLU's backward
        del d_act, gate
        _add_products(d_x, d_w[0], part, d_gate, gate_w, chunk)
        del d_gate  # else the next chunk's products are made while it still lives
    return [d_x, *d_w]


def _add_products(d_x: torch.Tensor | None, d_weight: torch.Tensor | None, part: slice, d_out: torch.Tensor,
                  weight: torch.Tensor, chunk: torch.Tensor) -> None:
    """A projection's share of the gradients: d_x[part] += d_out @ weight, d_weight += d_out^T @ chunk."""
    if d_x is not None:
        _add_product(d_x[part], d_out, weight)
    if d_weight is not None:
        _add_product(d_weight, d_out.t(), chunk)


def _add_product(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out += a @ b: in place in out's dtype, or through a product in a's when they differ (bf16)."""
    if out.dtype == a.dtype:
        out.addmm_(a, b)
    else:
        out.add_(torch.mm(a, b))


def recomputing_swiglu_mlp(x: torch.Tensor, gate_w: torch.Tensor, up_w: torch.Tensor, down_w: torch.Tensor,
                           chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:
    """down(silu(gate(x)) * up(x)) for bias-free projections, saving only x (see the module doc)."""
    return _RecomputedSwiGLU.apply(x, gate_w, up_w, down_w, chunk_rows)
