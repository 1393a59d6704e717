"""`live_strength`: a live adapter rendered at another strength, then restored exactly."""

from __future__ import annotations

import pytest
import torch

from acetune.adapters import attach
from acetune.adapters.strength import live_strength
from acetune.config import AdapterKind
from acetune.errors import ConfigError


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.LOKR, AdapterKind.LOHA])
def test_strength_zero_is_the_base_and_one_is_as_trained(new_decoder, config_for, train_step, forward, kind):
    base = forward(new_decoder(0))
    attached = attach(new_decoder(0), config_for(kind))
    for _ in range(3):
        train_step(attached, lr=5e-2)
    trained = forward(attached.decoder)
    assert (trained - base).abs().max() > 1e-4
    with live_strength(attached, 0.0):
        assert torch.allclose(forward(attached.decoder), base, atol=1e-6)
    with live_strength(attached, 0.5):
        half = forward(attached.decoder)
    assert (half - base).abs().max() > 1e-5 and (half - trained).abs().max() > 1e-5
    assert torch.equal(forward(attached.decoder), trained)  # restored exactly afterwards


@pytest.mark.parametrize("kind", [AdapterKind.FULL, AdapterKind.DORA])
def test_full_and_dora_have_no_other_live_strength(new_decoder, config_for, kind):
    attached = attach(new_decoder(0), config_for(kind))
    with live_strength(attached, 1.0):
        pass
    with pytest.raises(ConfigError, match=f"live {kind.value} adapter renders only at strength 1.0"):
        with live_strength(attached, 0.5):
            pass


def test_strength_is_restored_when_rendering_fails(new_decoder, config_for, train_step, forward):
    attached = attach(new_decoder(0), config_for(AdapterKind.LORA))
    train_step(attached, lr=5e-2)
    trained = forward(attached.decoder)
    with pytest.raises(RuntimeError):
        with live_strength(attached, 0.0):
            raise RuntimeError("out of memory")
    assert torch.equal(forward(attached.decoder), trained)
