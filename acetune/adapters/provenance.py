"""How an adapter was trained, where that changes how it should be played: its RoPE convention.

acetune records `rope_dtype` (and `precision`) in every adapter it trains. Files without it:
acetune wrote them before it recorded the convention, with fp32 frequencies; any other trainer
(the official one, Side-Step, ace-lora-trainer) casts the official model to bf16, which rounds
the frequencies (the `model` convention).
"""

from __future__ import annotations

from acetune.config.schema import RopeDtype

ROPE_KEY = "rope_dtype"


def trained_rope_dtype(metadata: dict[str, str]) -> tuple[RopeDtype, str]:
    """The RoPE convention an adapter was trained with, and how that is known."""
    recorded = metadata.get(ROPE_KEY)
    if recorded in {value.value for value in RopeDtype}:
        return RopeDtype(recorded), "recorded in the adapter"
    if metadata.get("acetune_version"):
        return RopeDtype.FP32, "acetune before it recorded the convention used fp32 frequencies"
    return RopeDtype.MODEL, "not recorded; other trainers run the official model cast to bf16"
