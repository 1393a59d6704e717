"""Gradient checkpointing by ratio gives the same gradients, also with a frozen base."""

from __future__ import annotations

import pytest
import torch

from acetune.model import build_tiny_model


def decoder_grads(ratio: float, frozen_base: bool) -> dict[str, torch.Tensor]:
    model = build_tiny_model("tiny", seed=2)
    model.train()
    decoder = model.decoder
    decoder.set_gradient_checkpointing(ratio)
    if frozen_base:
        # what an adapter run looks like: base frozen, a few weights inside the layers trainable
        for p in decoder.parameters():
            p.requires_grad_(False)
        for layer in decoder.layers:
            layer.self_attn.q_proj.weight.requires_grad_(True)
            layer.mlp.up_proj.weight.requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 24, 64, generator=g)
    ctx = torch.randn(2, 24, 128, generator=g)
    enc = torch.randn(2, 7, 64, generator=g)
    t = torch.tensor([0.3, 0.8])
    out = decoder(x, t, t, enc, ctx)
    out.pow(2).mean().backward()
    return {n: p.grad.clone() for n, p in decoder.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("frozen_base", [False, True])
def test_checkpointed_gradients_equal_plain_ones(frozen_base):
    plain = decoder_grads(0.0, frozen_base)
    checkpointed = decoder_grads(1.0, frozen_base)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert plain[name].abs().sum() > 0, name  # the frozen-base pitfall would leave these at zero/None
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6), name


def test_ratio_picks_evenly_spaced_layers():
    model = build_tiny_model("tiny")
    assert model.decoder.set_gradient_checkpointing(0.0) == []
    assert model.decoder.set_gradient_checkpointing(0.5) == [0]
    assert model.decoder.set_gradient_checkpointing(1.0) == [0, 1]
    from acetune.model import build_model, named_config

    big = build_model(named_config("2b"), meta=True)
    assert big.decoder.set_gradient_checkpointing(0.5) == [round(i * 23 / 11) for i in range(12)]
    with pytest.raises(ValueError, match="ratio"):
        big.decoder.set_gradient_checkpointing(1.5)
