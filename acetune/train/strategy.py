"""The data-parallel strategy of a run, one object: `Replicated` (one process, or DDP replicas) or `Sharded`
(FSDP2 for a data-parallel full fine-tune, see sharding.py).

Everything that differs between the two lives here: how the decoder is called, how gradient sync is
skipped on accumulation micro-steps, how the trainable and optimizer states are read and restored
(gathered when sharded: a collective every rank must join), which ranks take part in saving, the EMA
class, and how per-layer gradient norms are reduced. The loop, the resume code and the savers ask the
strategy and never test which one they have.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from acetune.adapters import AttachedAdapter
from acetune.train.distributed import DistInfo, mean_across, no_sync, sum_across, wrap
from acetune.train.ema import EMA
from acetune.train.sharding import (GatheredDecoder, ShardedEMA, drop_unsynced_gradients, gathered_model_state,
                                    gathered_optimizer_state, gathered_trainable_state, load_sharded_optimizer_state,
                                    load_sharded_trainable_state, local_shard)


class Replicated:
    """Every rank holds the whole trainable state; DDP all-reduces gradients when there are several ranks."""

    sharded = False

    def __init__(self, dist: DistInfo, decoder: torch.nn.Module, adapter: AttachedAdapter, device: torch.device):
        self.dist, self.decoder, self.adapter = dist, decoder, adapter
        self.forward = self._forward_module(device)

    def _forward_module(self, device: torch.device) -> torch.nn.Module:
        return wrap(self.decoder, self.dist, device)

    # --- the step ------------------------------------------------------------------------
    def no_sync(self, skip: bool):
        """Skip the gradient all-reduce (or reduce-scatter) on accumulation micro-steps."""
        return no_sync(self.forward, skip)

    def drop_unsynced(self) -> None:
        """Forget gradients held outside the parameters (nothing to do for replicas)."""

    def mean(self, value: float) -> float:
        return mean_across(value, self.dist)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return sum_across(tensor, self.dist)

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any rank."""
        return self.mean(1.0 if flag else 0.0) > 0

    def make_ema(self, decay: float) -> EMA | None:
        return EMA(self.adapter.trainable_parameters, decay) if decay > 0 else None

    def layer_grad_norms(self) -> dict[str, float]:
        """Gradient L2 norm per DiT layer (and per top-level module)."""
        return {k: math.sqrt(v) for k, v in sorted(self._square_sums(keep_empty=False).items())}

    def _square_sums(self, keep_empty: bool) -> dict[str, float]:
        sums: dict[str, float] = {}
        for name, param in self.adapter.trainable_parameters.items():
            parts = name.split(".")
            key = ".".join(parts[:parts.index("layers") + 2]) if "layers" in parts else parts[0]
            if param.grad is None:
                if keep_empty:
                    sums.setdefault(key, 0.0)
                continue
            sums[key] = sums.get(key, 0.0) + float(local_shard(param.grad).float().pow(2).sum())
        return sums

    # --- state ---------------------------------------------------------------------------
    @property
    def saves_here(self) -> bool:
        """Does this rank take part in writing checkpoints and adapters?"""
        return self.dist.is_main

    @property
    def renders_auditions(self) -> bool:
        return self.dist.is_main

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.adapter.trainable_state_dict()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.adapter.load_trainable_state_dict(state)

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        optimizer.load_state_dict(state)

    def adapter_for_saving(self) -> AttachedAdapter | None:
        """What `save_adapter` gets on the rank that writes; None elsewhere (call inside `ema.applied()`)."""
        return self.adapter if self.dist.is_main else None


class Sharded(Replicated):
    """FSDP2: each rank holds 1/N of the weights, gradients and AdamW states (`sharding.shard_decoder`).

    Reading state gathers it (every rank must call; rank 0 gets the full tensors); restoring keeps
    each rank's slice. Auditions are not rendered: rank 0 cannot run the sharded decoder alone.
    """

    sharded = True

    def _forward_module(self, device: torch.device) -> torch.nn.Module:
        return self.decoder  # fully_shard works in place: the decoder is its own wrapper

    def drop_unsynced(self) -> None:
        drop_unsynced_gradients(self.decoder)

    def make_ema(self, decay: float) -> EMA | None:
        return ShardedEMA(self.adapter.trainable_parameters, decay) if decay > 0 else None

    def layer_grad_norms(self) -> dict[str, float]:
        sums = self._square_sums(keep_empty=True)  # every rank reduces the same keys
        keys = sorted(sums)
        totals = self.sum(torch.tensor([sums[k] for k in keys], dtype=torch.float64))
        return {k: math.sqrt(v) for k, v in zip(keys, totals.tolist())}

    @property
    def saves_here(self) -> bool:
        return True  # the gathers are collectives; rank 0 alone writes

    @property
    def renders_auditions(self) -> bool:
        return False

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return gathered_trainable_state(self.decoder, self.adapter.trainable_names)

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        load_sharded_trainable_state(self.decoder, self.adapter.trainable_names, state)

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return gathered_optimizer_state(self.decoder, optimizer)

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        load_sharded_optimizer_state(self.decoder, optimizer, state)

    def adapter_for_saving(self) -> AttachedAdapter | None:
        full = gathered_model_state(self.decoder)
        if not self.dist.is_main:
            return None
        return dataclasses.replace(self.adapter, decoder=GatheredDecoder(full))


Strategy = Replicated  # the common interface; `Sharded` overrides what sharding changes
