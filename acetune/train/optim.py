"""Optimizers and learning-rate schedules.

Schedules are one pure function of the step (`lr_factor`) driven by torch's `LambdaLR`, so their
state is just the step count and resume is exact. Warmup goes linearly from
`warmup_start_factor` to 1 over min(warmup_steps, max(1, total // 10)) steps.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from acetune.config import OptimConfig, OptimizerKind, ScheduleConfig, SchedulerKind
from acetune.errors import ConfigError


def build_optimizer(param_groups: Iterable[dict], config: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    groups = list(param_groups)
    kind = config.optimizer
    if kind == OptimizerKind.ADAMW:
        fused = device.type == "cuda"
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps,
                                 weight_decay=config.weight_decay, fused=fused or None)
    if kind == OptimizerKind.ADAMW8BIT:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ConfigError("optim.optimizer = adamw8bit needs bitsandbytes, which is not installed",
                              fix="pip install 'acetune[bnb]' (CUDA only), or use optim.optimizer = adamw") from None
        if device.type != "cuda":
            raise ConfigError("optim.optimizer = adamw8bit runs on CUDA only", fix="use optim.optimizer = adamw")
        return bnb.optim.AdamW8bit(groups, lr=config.lr, betas=config.betas, eps=config.eps,
                                   weight_decay=config.weight_decay)
    if kind == OptimizerKind.ADAFACTOR:
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=config.lr, weight_decay=config.weight_decay, scale_parameter=False,
                         relative_step=False, warmup_init=False)
    if kind == OptimizerKind.PRODIGY:
        try:
            from prodigyopt import Prodigy
        except ImportError:
            raise ConfigError("optim.optimizer = prodigy needs prodigyopt, which is not installed",
                              fix="pip install 'acetune[prodigy]', or use optim.optimizer = adamw") from None
        return Prodigy(groups, lr=config.lr, betas=(config.betas[0], 0.99), eps=config.eps,
                       weight_decay=config.weight_decay, safeguard_warmup=True, use_bias_correction=True)
    raise ConfigError(f"unknown optimizer {kind!r}")  # pragma: no cover - the config loader rejects it


def warmup_steps(config: ScheduleConfig, total_steps: int) -> int:
    if config.scheduler == SchedulerKind.CONSTANT:
        return 0
    return min(config.warmup_steps, max(1, total_steps // 10))


def lr_factor(step: int, config: ScheduleConfig, total_steps: int) -> float:
    """Multiplier of the peak lr after `step` optimizer steps."""
    warmup = warmup_steps(config, total_steps)
    if step < warmup:
        return config.warmup_start_factor + (1.0 - config.warmup_start_factor) * step / warmup
    kind = config.scheduler
    if kind in (SchedulerKind.CONSTANT, SchedulerKind.CONSTANT_WITH_WARMUP):
        return 1.0
    remaining = max(1, total_steps - warmup)
    done = min(step - warmup, remaining)
    floor = config.min_lr_ratio
    if kind == SchedulerKind.LINEAR:
        return 1.0 - (1.0 - floor) * done / remaining
    if kind == SchedulerKind.COSINE_RESTARTS:
        cycle = max(1, remaining // config.restarts)
        done, remaining = (step - warmup) % cycle, cycle
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * done / remaining))


def build_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config, total_steps))
