"""`loop.recompute_mlp`: the recomputing SwiGLU MLP keeps only its input, and computes what the plain MLP does.

Forward must equal the plain MLP to rounding (a GEMM kernel may block a few rows differently from
many: 1 ulp apart on these tiny shapes; the small config's decoder output is bit-identical at 1500
and 3000 frames and 1.5e-6 apart at 750 on the CI CPU);
gradients are checked by gradcheck in float64 and against autograd through the plain MLP in
fp32. The memory claim is checked by what autograd actually saves.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from acetune.model.layers import MLP
from acetune.model.lean_mlp import recomputing_swiglu_mlp
from acetune.model.tiny import named_config

# fp32 forward: the same products on row chunks; measured max |diff| 9.5e-7 here (one ulp of the
# gate/up values), while a wrong formula moves outputs by more than 1e-2.
FORWARD_ATOL = 5e-6
# fp32 gradients of the recomputing path against autograd's: both sum the same products in a different
# order (addmm into dx, per-chunk weight sums); measured max |diff| ~1e-6 at these magnitudes.
GRAD_ATOL = 2e-5


def _mlp(trainable: bool, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    mlp = MLP(16, 40)
    return mlp.requires_grad_(trainable)


def _grads(mlp: MLP, x: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().requires_grad_(True)
    out = mlp(x)
    (out * weights).sum().backward()
    grads = [x.grad] + [p.grad for p in mlp.parameters() if p.grad is not None]
    for p in mlp.parameters():
        p.grad = None
    return [out.detach(), *grads]


@pytest.mark.parametrize("trainable", [False, True])
def test_forward_and_gradients_match_plain(trainable):
    mlp = _mlp(trainable)
    x, weights = torch.randn(2, 13, 16), torch.randn(2, 13, 16)
    plain = _grads(mlp, x, weights)
    mlp.recompute_rows = 5  # 2 x 13 rows -> six chunks, the last one short
    chunked = _grads(mlp, x, weights)
    assert len(chunked) == len(plain) == (5 if trainable else 2)
    torch.testing.assert_close(chunked[0], plain[0], rtol=0, atol=FORWARD_ATOL)
    for ours, theirs in zip(chunked[1:], plain[1:]):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=GRAD_ATOL)


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)
    x, gate, up = (torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True)
                   for s in ((1, 7, 4), (6, 4), (6, 4)))
    down = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *args: recomputing_swiglu_mlp(*args, chunk_rows=3), (x, gate, up, down))


def test_keeps_only_its_input_for_backward():
    """What autograd holds for backward: x and the weights, not gate(x) and up(x)."""
    mlp = _mlp(trainable=False)
    x = torch.randn(1, 64, 16, requires_grad=True)

    def saved_bytes() -> int:
        storages: dict[int, int] = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            mlp(x)
        return sum(storages.values()) - sum(p.numel() * 4 for p in mlp.parameters())

    plain = saved_bytes()
    mlp.recompute_rows = 256
    assert plain == 2 * 64 * 40 * 4  # gate(x) and up(x)
    assert saved_bytes() == 64 * 16 * 4  # x only


def test_bf16_autocast_matches_plain_forward():
    mlp = _mlp(trainable=False)
    x = torch.randn(1, 9, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = mlp(x)
        mlp.recompute_rows = 256
        chunked = mlp(x)
    assert chunked.dtype == plain.dtype == torch.bfloat16
    assert torch.equal(chunked, plain)


def test_adapters_on_the_mlp_keep_the_plain_path():
    """A patched forward (LyCORIS replaces it) or a wrapped projection means the weights alone are wrong."""
    from acetune.model.dit import DiTModel

    decoder = DiTModel(named_config("tiny"))
    assert decoder.set_mlp_recompute(True) == list(range(len(decoder.layers)))
    patched = decoder.layers[0].mlp.up_proj
    patched.forward = lambda x: nn.functional.linear(x, patched.weight) * 2  # noqa: ARG005
    decoder.layers[1].mlp.down_proj = nn.Sequential(nn.Linear(40, 16))
    applied = decoder.set_mlp_recompute(True)
    assert 0 not in applied and 1 not in applied and applied == list(range(2, len(decoder.layers)))
    assert decoder.set_mlp_recompute(False) == []


def test_without_gradients_the_plain_path_runs(monkeypatch):
    """Renders (auditions during a run) have nothing to save: they keep the plain, whole-sequence path."""
    mlp = _mlp(trainable=False)
    mlp.recompute_rows = 256
    monkeypatch.setattr("acetune.model.layers.recomputing_swiglu_mlp", lambda *args: pytest.fail("recomputed"))
    with torch.no_grad():
        mlp(torch.randn(1, 9, 16))


def test_bf16_autocast_gradients_match_plain():
    """Products in bf16 as autocast runs them, sums in fp32: within bf16 rounding of autograd's."""
    mlp = _mlp(trainable=True)
    x, weights = torch.randn(2, 13, 16), torch.randn(2, 13, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = _grads(mlp, x, weights)
        mlp.recompute_rows = 256
        recomputed = _grads(mlp, x, weights)
    assert [g.dtype for g in recomputed] == [g.dtype for g in plain]
    for ours, theirs in zip(recomputed[1:], plain[1:]):
        # bf16 keeps 8 bits: products agree to about 1 %, a wrong formula is off by far more
        torch.testing.assert_close(ours, theirs, rtol=2e-2, atol=2e-2 * theirs.abs().max().item())


def test_checkpointed_layers_recompute_in_smaller_chunks():
    """Where a layer is recomputed anyway, its MLP chunk is a large part of the peak: 64 rows there."""
    from acetune.model.dit import DiTModel

    decoder = DiTModel(named_config("tiny"))
    decoder.set_mlp_recompute(True)
    decoder.set_gradient_checkpointing(0.5)  # either order
    assert [layer.mlp.recompute_rows for layer in decoder.layers] == [64, 256]
    decoder.set_mlp_recompute(False)
    assert [layer.mlp.recompute_rows for layer in decoder.layers] == [0, 0]
