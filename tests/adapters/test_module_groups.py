"""Per-group rank / alpha / scale rows of `adapter info`, from hand-made deltas."""

from __future__ import annotations

import torch

from acetune.adapters.deltas import ModuleDelta
from acetune.adapters.module_groups import GroupRow, group_rows


def lora(module: str, rank: int, alpha: float | None) -> ModuleDelta:
    tensors = {"lora_down": torch.zeros(rank, 8), "lora_up": torch.zeros(8, rank)}
    return ModuleDelta(module, "lora", tensors, 1.0 if alpha is None else alpha / rank, alpha=alpha)


def test_groups_follow_the_decoder_and_show_ranges():
    deltas = [lora("layers.0.self_attn.v_proj", 4, 8.0), lora("layers.0.self_attn.q_proj", 8, 8.0),
              lora("layers.3.self_attn.q_proj", 8, 8.0), lora("layers.1.mlp.down_proj", 4, None),
              lora("layers.1.self_attn.q_norm", 4, 4.0), lora("time_embed.linear_1", 4, 4.0),
              ModuleDelta("layers.0.cross_attn.o_proj", "full", {"weight": torch.zeros(8)}, param="bias")]
    rows = group_rows({d.target: d for d in deltas})
    assert rows == [
        GroupRow("self-attention", "q/v", 2, 3, "lora", "4–8", "8", "1–2"),
        GroupRow("MLP", "down", 1, 1, "lora", "4", "—", "1"),
        GroupRow("norms", "q_norm", 1, 1, "lora", "4", "4", "1"),
        GroupRow("embeddings and projections", "time_embed", 0, 1, "lora", "4", "4", "1"),
        GroupRow("biases", "bias", 1, 1, "full", "full", "—", "—"),
    ]
    pair = (lora("layers.0.mlp.up_proj", 4, 8.0), lora("layers.0.mlp.gate_proj", 4, None))
    mixed = group_rows({d.module: d for d in pair})
    assert mixed[0].parts == "gate/up" and mixed[0].alpha == "8 (some —)"
