"""Helpers for the inference-side adapter tests: trained-looking adapters saved the way training saves them."""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.adapters import AttachedAdapter, attach, save_adapter
from acetune.config import AdapterConfig


@torch.no_grad()
def randomise(attached: AttachedAdapter, seed: int = 0, size: float = 0.1) -> None:
    """Move every trainable tensor by noise, so LoRA B / LoKr w2 are no longer zero and deltas are visible."""
    generator = torch.Generator().manual_seed(seed)
    for param in attached.trainable_parameters.values():
        param.add_(torch.randn(param.shape, generator=generator) * size)


def saved_adapter(decoder: torch.nn.Module, config: AdapterConfig, folder: Path, *, seed: int = 0,
                  metadata: dict[str, str] | None = None) -> AttachedAdapter:
    """Attach `config` to `decoder`, randomise it, save it into `folder`; the decoder stays adapted (live)."""
    attached = attach(decoder, config, seed=seed)
    randomise(attached, seed)
    attached.decoder.requires_grad_(False)  # same matmul kernels as a frozen, patched decoder
    save_adapter(attached, folder, metadata=metadata or {})
    return attached
