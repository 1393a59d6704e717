"""`attach`: put the configured adapter on a decoder, freeze the rest, return an `AttachedAdapter`.

One function for every kind (STYLE §2.4: adapters are data); the kind picks a backend from
one table, never an if/elif ladder.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from acetune.adapters.attached import AttachedAdapter
from acetune.adapters.full import attach_full
from acetune.adapters.kinds import KINDS, LYCORIS, PEFT
from acetune.adapters.lycoris_backend import attach_lycoris
from acetune.adapters.peft_backend import attach_peft
from acetune.adapters.targets import require_plain_decoder, target_module_names
from acetune.config import AdapterConfig, AdapterKind
from acetune.errors import ConfigError
from acetune.model.devices import cuda_indices, forked_rng

_BACKENDS = {PEFT: attach_peft, LYCORIS: attach_lycoris}  # full needs no target list: attach_full


def attach(decoder: nn.Module, config: AdapterConfig, *, seed: int | None = None) -> AttachedAdapter:
    """Attach `config`'s adapter to `decoder` (the `DiTModel`, i.e. `model.decoder`) in place.

    Afterwards only the adapter trains: lora/dora through PEFT, lokr/loha through LyCORIS,
    both on exactly `target_module_names(decoder, config)`; `full` makes every decoder weight
    trainable (only with `allow_full`). Keep calling `decoder` (it is `result.decoder`).
    `seed` makes the adapter's random initialisation independent of the global RNG, which is
    left as it was.
    """
    try:
        kind = AdapterKind(config.kind)
    except ValueError as err:
        raise ConfigError(f"unknown adapter kind {config.kind!r}",
                          fix=f"choose one of {', '.join(k.value for k in AdapterKind)}") from err
    require_plain_decoder(decoder)
    with _seeded(seed, decoder):
        if kind is AdapterKind.FULL:
            return attach_full(decoder, config)
        return _BACKENDS[KINDS[kind].backend](decoder, config, target_module_names(decoder, config))


@contextmanager
def _seeded(seed: int | None, decoder: nn.Module):
    """Seed the adapter init on a forked RNG (CPU, plus the decoder's CUDA device)."""
    if seed is None:
        yield
        return
    device = next(decoder.parameters()).device
    with forked_rng(device):
        torch.default_generator.manual_seed(seed)
        for index in cuda_indices(device):
            torch.cuda.default_generators[index].manual_seed(seed)
        yield
