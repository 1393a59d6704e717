"""Optimizer parameter groups: which weights get weight decay and which learning rate.

Weight decay pulls a parameter towards zero. That is a regulariser for weight matrices but
corrupts gains and offsets: a norm weight or a DoRA magnitude decayed to 0 switches its
channel off, and AdaLN `scale_shift_table`s and biases are offsets. So these never decay
(nanoGPT's `configure_optimizers` split, made explicit per decoder part here).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from acetune.config import AdapterConfig
from acetune.model.layers import RMSNorm

# Adapter parameters that are scales or offsets rather than low-rank factors.
_ADAPTER_NO_DECAY = ("lora_magnitude_vector", "dora_scale")
_NORM_TYPES = (RMSNorm, nn.LayerNorm, nn.GroupNorm)

# Full fine-tune parts, tried in order on the parameter name (norms are found by module type first).
_PARTS = (
    ("norms", re.compile(r"(^|\.)scale_shift_table$")),
    ("attention", re.compile(r"^layers\.\d+\.(self_attn|cross_attn)\.[qkvo]_proj\.")),
    ("mlp", re.compile(r"^layers\.\d+\.mlp\.")),
    ("embeddings", re.compile(r"^(proj_in|proj_out|time_embed|time_embed_r|condition_embedder)\.")),
)


def adapter_param_groups(params: dict[str, nn.Parameter], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """One decayed group for the adapter factors, one undecayed for biases and magnitude vectors."""
    decay, no_decay = [], []
    for name, param in params.items():
        plain = name.endswith(".bias") or any(marker in name for marker in _ADAPTER_NO_DECAY)
        (no_decay if plain else decay).append(param)
    groups = [{"name": "adapter", "params": decay, "lr": lr, "weight_decay": weight_decay},
              {"name": "adapter_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def full_param_groups(decoder: nn.Module, config: AdapterConfig, lr: float,
                      weight_decay: float) -> list[dict[str, Any]]:
    """Groups for a full decoder fine-tune: attention / MLP / norms+tables / embeddings.

    Each part's lr is `lr` times its multiplier (`lr_attention`, `lr_mlp`, `lr_norms`,
    `lr_embeddings`). Norm weights, `scale_shift_table`s and every bias go into `*_no_decay`
    groups. A parameter that fits no part is an error, so a new module is never silently
    left out of the optimizer.
    """
    multiplier = {"attention": config.lr_attention, "mlp": config.lr_mlp, "norms": config.lr_norms,
                  "embeddings": config.lr_embeddings}
    buckets: dict[str, list[nn.Parameter]] = {}
    for name, param, part in _classify(decoder):
        if not param.requires_grad:
            continue
        decays = part != "norms" and not name.endswith(".bias")
        buckets.setdefault(part if decays else f"{part}_no_decay", []).append(param)
    groups = []
    for part in ("attention", "mlp", "norms", "embeddings"):
        for key, decay in ((part, weight_decay), (f"{part}_no_decay", 0.0)):
            if buckets.get(key):
                groups.append({"name": key, "params": buckets[key], "lr": lr * multiplier[part],
                               "weight_decay": decay})
    return groups


def _classify(decoder: nn.Module):
    """Yield (name, parameter, part) for every decoder parameter."""
    for module_name, module in decoder.named_modules():
        for local, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{local}" if module_name else local
            if isinstance(module, _NORM_TYPES):
                yield name, param, "norms"
                continue
            part = next((part for part, pattern in _PARTS if pattern.search(name)), None)
            if part is None:
                raise ValueError(f"decoder parameter {name} belongs to no full fine-tune group; "
                                 "add its module to acetune/adapters/groups.py")
            yield name, param, part
