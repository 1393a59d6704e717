"""`AttachedAdapter`: what the trainer holds after `attach` or `load_adapter`.

One record for every kind, so the loop never branches on the adapter: it calls `decoder`,
builds its optimizer from `param_groups`, and saves/restores/averages `trainable_state_dict`.
The adapter weights live inside `decoder` (PEFT injects in place; the LyCORIS network is
registered as a submodule), so `decoder.to(...)`, `.train()` and `.eval()` cover them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from acetune.adapters.groups import adapter_param_groups, full_param_groups
from acetune.config import AdapterConfig, AdapterKind
from acetune.errors import ModelLoadError


@dataclass(eq=False)
class AttachedAdapter:
    """An adapter attached to a DiT decoder (or the decoder itself for a full fine-tune).

    `decoder` is the same `DiTModel` object that was passed in: call it, and reach
    `set_gradient_checkpointing`, `config` and `layers` on it as before. `backend` is the
    library object that owns the adapter (a PEFT `PeftModel` for lora/dora, a LyCORIS
    `LycorisNetwork` for lokr/loha, None for full); only `acetune.adapters` uses it.
    """

    kind: AdapterKind
    config: AdapterConfig
    decoder: nn.Module
    targets: tuple[str, ...]  # adapted module names; empty for a full fine-tune
    trainable_names: tuple[str, ...]  # decoder parameter names, fixed at attach time
    backend: Any = None

    @property
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """The parameters the optimizer updates, by their (stable) decoder-relative names."""
        params = dict(self.decoder.named_parameters())
        return {name: params[name] for name in self.trainable_names}

    @property
    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters.values())

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups (each has a `name` key for logging).

        Adapters: one group with weight decay and one without for biases and magnitude vectors.
        Full fine-tune: per-part groups with the config's LR multipliers (see `groups.py`).
        """
        if self.kind is AdapterKind.FULL:
            return full_param_groups(self.decoder, self.config, lr, weight_decay)
        return adapter_param_groups(self.trainable_parameters, lr, weight_decay)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Detached CPU copies of the trainable parameters (for saving; no second copy on the GPU)."""
        return {name: param.detach().to("cpu", copy=True) for name, param in self.trainable_parameters.items()}

    @torch.no_grad()
    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy `state` into the trainable parameters: same names, same shapes, nothing extra.

        Values are copied in place (the optimizer keeps pointing at the same tensors); a dtype
        difference is cast, an equal dtype round-trips bit-exactly.
        """
        params = self.trainable_parameters
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or unexpected:
            raise ModelLoadError(f"trainable state does not match the {self.kind.value} adapter: "
                                 f"{len(missing)} missing (e.g. {missing[:2]}), "
                                 f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})",
                                 fix="restore state saved by a run with the same adapter config")
        for name, param in params.items():
            if tuple(state[name].shape) != tuple(param.shape):
                raise ModelLoadError(f"trainable state {name} has shape {list(state[name].shape)}, "
                                     f"the adapter expects {list(param.shape)}",
                                     fix="restore state saved by a run with the same adapter config")
        for name, param in params.items():
            param.copy_(state[name])
