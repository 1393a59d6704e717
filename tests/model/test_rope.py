"""RoPE frequencies follow `rope_dtype`: rounded to the compute dtype as the official app does, or fp32.

The official app casts the whole model (`model.to(bf16)`), which rounds the rotary `inv_freq`
buffer to bf16; the angles are then float(bf16(inv_freq)) * position in fp32 and cos/sin are
cast to bf16 (golden README section 8). At tiny size the two conventions differ by about as much
as bf16 noise between CPUs, so the convention is pinned here on the cos/sin tables themselves, at
the long positions of real songs (the real config: head_dim 128, rope_theta 1e6).
"""

from __future__ import annotations

import pytest
import torch

from acetune.config import config_from_dict
from acetune.config.schema import RopeDtype, RunConfig
from acetune.errors import ConfigError
from acetune.model import AceStepModel, AttentionOptions
from acetune.model.layers import RotaryEmbedding
from acetune.model.tiny import build_tiny_model, named_config

HEAD_DIM, THETA = 128, 1_000_000.0  # the 2B and XL decoders (ModelConfig defaults)
LENGTH = 3000  # DiT positions of a 240 s song: 25 latent frames/s, patch size 2
BF16_ULP_AT_ONE = 2.0**-8


def reference_tables(rounded_to: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [LENGTH, HEAD_DIM] in float64 from the documented formula, frequencies optionally rounded first."""
    exponents = torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM
    inv_freq = (1.0 / THETA**exponents).float()  # the fp32 frequencies every implementation starts from
    if rounded_to is not None:
        inv_freq = inv_freq.to(rounded_to)
    angles = torch.arange(LENGTH, dtype=torch.float64)[:, None] * inv_freq.double()[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


def tables(rope_dtype, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    return RotaryEmbedding(HEAD_DIM, THETA, rope_dtype)(LENGTH, torch.device("cpu"), dtype)


def far(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def test_model_convention_in_bf16_uses_bf16_frequencies_at_long_positions():
    cos, sin = tables(RopeDtype.MODEL, torch.bfloat16)
    assert cos.dtype == sin.dtype == torch.bfloat16
    ref_cos, ref_sin = reference_tables(torch.bfloat16)
    # within one bf16 rounding of the exact value (plus fp32 cos/sin error)
    assert far(cos, ref_cos) <= BF16_ULP_AT_ONE and far(sin, ref_sin) <= BF16_ULP_AT_ONE
    fp32_cos, _ = reference_tables(None)
    assert far(cos, fp32_cos) > 0.5  # the other convention is a different table, not noise


def test_fp32_convention_keeps_fp32_frequencies_in_a_bf16_model():
    cos, sin = tables(RopeDtype.FP32, torch.bfloat16)
    ref_cos, ref_sin = reference_tables(None)
    assert far(cos, ref_cos) <= BF16_ULP_AT_ONE and far(sin, ref_sin) <= BF16_ULP_AT_ONE
    assert far(cos, reference_tables(torch.bfloat16)[0]) > 0.5


def test_conventions_coincide_in_fp32_and_fp16_rounds_to_fp16():
    model, fp32 = tables(RopeDtype.MODEL, torch.float32), tables(RopeDtype.FP32, torch.float32)
    assert torch.equal(model[0], fp32[0]) and torch.equal(model[1], fp32[1])
    rope = RotaryEmbedding(HEAD_DIM, THETA, "model")
    fp32_freq = rope.inverse_frequencies(torch.device("cpu"), torch.float32)
    assert torch.equal(rope.inverse_frequencies(torch.device("cpu"), torch.float16), fp32_freq.half().float())
    assert torch.equal(rope.inverse_frequencies(torch.device("cpu"), torch.bfloat16), fp32_freq.bfloat16().float())
    assert not torch.equal(fp32_freq.bfloat16().float(), fp32_freq)


def test_phase_difference_of_the_conventions_at_song_lengths():
    """The numbers bench/rope_phase.py reports: ~0.9 rad at 60 s and ~3.5 rad at 240 s (DiT positions)."""
    rope = RotaryEmbedding(HEAD_DIM, THETA, "model")
    fp32 = rope.inverse_frequencies(torch.device("cpu"), torch.float32).double()
    rounded = rope.inverse_frequencies(torch.device("cpu"), torch.bfloat16).double()
    for seconds, low, high in ((60, 0.5, 1.5), (240, 2.5, 4.5)):
        position = seconds * 25 / 2  # the last DiT position (25 latent frames/s, patch 2)
        phase = ((fp32 - rounded).abs() * position).max().item()
        assert low < phase < high, (seconds, phase)


def test_every_rotary_stack_of_the_model_follows_the_options():
    config = named_config("tiny")
    for value in RopeDtype:
        model = AceStepModel(config, AttentionOptions(rope_dtype=value.value))
        stacks = {name: m.rope_dtype for name, m in model.named_modules() if isinstance(m, RotaryEmbedding)}
        assert set(stacks) == {"decoder.rotary_emb", "encoder.lyric_encoder.rotary_emb",
                               "encoder.timbre_encoder.rotary_emb", "tokenizer.attention_pooler.rotary_emb",
                               "detokenizer.rotary_emb"}
        assert set(stacks.values()) == {value}


def test_options_and_run_config_default_to_the_official_convention():
    assert AttentionOptions().rope_dtype is RopeDtype.MODEL
    assert RunConfig().loop.rope_dtype is RopeDtype.MODEL
    assert AttentionOptions(rope_dtype="fp32").rope_dtype is RopeDtype.FP32
    with pytest.raises(ValueError, match="rope_dtype"):
        AttentionOptions(rope_dtype="bf16")
    assert config_from_dict({"loop": {"rope_dtype": "fp32"}}, source="t").loop.rope_dtype is RopeDtype.FP32
    with pytest.raises(ConfigError, match="loop.rope_dtype"):
        config_from_dict({"loop": {"rope_dtype": "half"}}, source="t")


def test_under_bf16_autocast_fp32_weights_get_bf16_frequencies(monkeypatch):
    """Training keeps fp32 masters under autocast: the rotary sees the bf16 compute dtype, as a bf16 model would."""
    seen = []
    original = RotaryEmbedding.inverse_frequencies

    def spy(self, device, dtype):
        seen.append(dtype)
        return original(self, device, dtype)

    monkeypatch.setattr(RotaryEmbedding, "inverse_frequencies", spy)
    decoder = build_tiny_model("tiny", 0).decoder.eval()
    x = torch.randn(1, 24, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        decoder(x, torch.tensor([0.5]), torch.tensor([0.5]), torch.randn(1, 5, 64), torch.randn(1, 24, 128))
    assert seen == [torch.bfloat16]
