"""Exponential moving average of the trainable weights (fp32 shadow on the CPU)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


class EMA:
    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float):
        self.params, self.decay, self.updates = params, decay, 0
        self.shadow = {k: p.detach().float().cpu().clone() for k, p in params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """shadow <- shadow + (1 - decay) * (param - shadow)."""
        self.updates += 1
        for name, param in self.params.items():
            self.shadow[name].lerp_(param.detach().float().cpu(), 1.0 - self.decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Swap the EMA weights in (for evaluation and saving), then restore the raw ones."""
        # the raw weights wait on the CPU: a full fine-tune must not need a second decoder on the GPU
        backup = {k: p.detach().to("cpu", copy=True) for k, p in self.params.items()}
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(self.shadow[name].to(param.device, param.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self.params.items():
                    param.copy_(backup[name])

    def state(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {k: v.float().clone() for k, v in state["shadow"].items()}
