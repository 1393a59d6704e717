"""Render a live (still training) adapter at another strength, then put everything back.

Auditions sweep strengths on the adapter the trainer holds, without a copy of any weight:
PEFT LoRA layers scale their `scaling` entries, a LyCORIS network its multiplier: the same
W + s*ΔW that `ModuleDelta.merged_weight` (generation, merge) applies. A full fine-tune has no
separate delta, and DoRA's strength is defined for generation as a lerp between the base and the
decomposed weight, which scaling PEFT's live layers does not give; both render only at 1.0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.kinds import KINDS, PEFT
from acetune.errors import ConfigError


def supports_strength(attached: AttachedAdapter) -> bool:
    """Whether the live adapter renders at strengths other than 1 (and at 0 exactly as the base)."""
    return KINDS[attached.kind].live_strength


@contextmanager
def live_strength(attached: AttachedAdapter, strength: float) -> Iterator[None]:
    """Within the block the adapter acts at `strength` (0 = the base model, 1 = as trained)."""
    if strength == 1.0:
        yield
        return
    if not supports_strength(attached):
        raise ConfigError(f"a live {attached.kind.value} adapter renders only at strength 1.0",
                          fix="set audition.strengths = [1.0], or render strengths from the saved adapter "
                              "with acetune generate")
    if KINDS[attached.kind].backend == PEFT:
        with _peft_scaled(attached, strength):
            yield
    else:
        with _lycoris_scaled(attached, strength):
            yield


@contextmanager
def _peft_scaled(attached: AttachedAdapter, strength: float) -> Iterator[None]:
    from peft.tuners.lora import LoraLayer

    layers = [m for m in attached.decoder.modules() if isinstance(m, LoraLayer)]
    saved = [dict(layer.scaling) for layer in layers]
    try:
        for layer in layers:
            for name in layer.scaling:
                layer.scaling[name] = layer.scaling[name] * strength
        yield
    finally:
        for layer, scaling in zip(layers, saved):
            layer.scaling.clear()
            layer.scaling.update(scaling)


@contextmanager
def _lycoris_scaled(attached: AttachedAdapter, strength: float) -> Iterator[None]:
    network = attached.backend
    saved = network.multiplier
    try:
        network.set_multiplier(saved * strength)
        yield
    finally:
        network.set_multiplier(saved)
