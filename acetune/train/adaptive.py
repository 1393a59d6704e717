"""Adaptive timestep sampling: part of each batch is drawn where the loss is currently high.

Ten equal bins over (0, 1) each keep an EMA of the loss of samples whose t fell in them
(initialised to 1, decay 0.99). For a share `ratio` of each batch, a bin is chosen with
probability proportional to its EMA and t is uniform inside it; the rest keep the pre-training
sampler, and the combined batch is shuffled. The state is part of every checkpoint.
"""

from __future__ import annotations

import torch

BINS = 10
DECAY = 0.99


class AdaptiveTimesteps:
    def __init__(self, ratio: float, bins: int = BINS, decay: float = DECAY):
        self.ratio, self.bins, self.decay = ratio, bins, decay
        self.ema = torch.ones(bins, dtype=torch.float64)

    def apply(self, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Replace int(len(t) * ratio) of the timesteps with loss-weighted draws, then shuffle."""
        count = int(len(t) * self.ratio)
        if count == 0:
            return t
        chosen = torch.multinomial(self.ema.clamp(min=1e-8), count, replacement=True, generator=generator)
        drawn = (chosen.double() + torch.rand(count, generator=generator, dtype=torch.float64)) / self.bins
        combined = torch.cat([drawn.to(t.dtype), t[count:]])
        return combined[torch.randperm(len(t), generator=generator)]

    def bin_totals(self, t: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin loss sums and counts of a batch (summed across data-parallel ranks by the caller)."""
        index = (t.detach().double().cpu() * self.bins).long().clamp(0, self.bins - 1)
        sums = torch.zeros(self.bins, dtype=torch.float64).index_add_(0, index, losses.detach().double().cpu())
        counts = torch.zeros(self.bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(index, dtype=torch.float64))
        return sums, counts

    def update(self, sums: torch.Tensor, counts: torch.Tensor) -> None:
        seen = counts > 0
        means = sums[seen] / counts[seen]
        self.ema[seen] = self.decay * self.ema[seen] + (1 - self.decay) * means

    def state(self) -> dict:
        return {"ratio": self.ratio, "ema": self.ema.clone()}

    def load_state(self, state: dict) -> None:
        self.ema = state["ema"].double().clone()
