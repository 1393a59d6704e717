"""Audio tokenizer (25 Hz latents -> 5 Hz FSQ codes) and detokenizer (codes -> 25 Hz "LM hints").

Used by the cover task and by 5 Hz LM codes. The quantizer is vector-quantize-pytorch's
ResidualFSQ, whose released numerics (soft clamp, level rounding, index basis) are exactly
the official ones; its constant buffers are built eagerly on the CPU even when the rest of
the model is created on the meta device, so nothing needs rebuilding after loading.
"""

from __future__ import annotations

import torch
from torch import nn

from acetune.model.config import ModelConfig
from acetune.model.layers import EncoderStack
from acetune.model.masks import AttentionOptions


class AttentionPooler(EncoderStack):
    """Pools each window of frames into one vector through a learned special token at position 0."""

    def __init__(self, config: ModelConfig, options: AttentionOptions):
        super().__init__(config, config.num_attention_pooler_hidden_layers, config.hidden_size, options)
        self.special_token = nn.Parameter(torch.randn(1, 1, config.hidden_size) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T5, W, D] -> [B, T5, D]
        batch, tokens, window, dim = x.shape
        h = self.embed_tokens(x)
        special = self.special_token.to(h.dtype).expand(batch, tokens, 1, dim)
        h = torch.cat([special, h], dim=2).reshape(batch * tokens, window + 1, dim)
        return self.run_layers(h)[:, 0].reshape(batch, tokens, dim)


def build_quantizer(config: ModelConfig, meta: bool):
    """ResidualFSQ with its constant buffers on the CPU; its two projections follow the rest of the model.

    Imported here: vector_quantize_pytorch pulls in einx and torch._dynamo (seconds), which CLI
    commands that never build a model should not pay for.
    """
    from vector_quantize_pytorch import ResidualFSQ

    with torch.device("cpu"):  # ResidualFSQ computes its buffers eagerly (and calls .item())
        quantizer = ResidualFSQ(dim=config.fsq_dim, levels=list(config.fsq_input_levels),
                                num_quantizers=config.fsq_input_num_quantizers)
    if meta:
        quantizer.project_in.to_empty(device="meta")
        quantizer.project_out.to_empty(device="meta")
    return quantizer


class AudioTokenizer(nn.Module):
    def __init__(self, config: ModelConfig, options: AttentionOptions):
        super().__init__()
        self.pool_window_size = config.pool_window_size
        self.audio_acoustic_proj = nn.Linear(config.audio_acoustic_hidden_dim, config.hidden_size)
        self.attention_pooler = AttentionPooler(config, options)
        self.quantizer = build_quantizer(config, meta=self.audio_acoustic_proj.weight.is_meta)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T5, W, C] latent windows -> pre-quantisation vectors [B, T5, D]."""
        return self.attention_pooler(self.audio_acoustic_proj(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T5, W, C] -> (quantized [B, T5, D], indices [B, T5, num_quantizers])."""
        pre_quant = self.encode(x)
        quantized, indices = self.quantizer(pre_quant.to(self.quantizer.project_in.weight.dtype))
        return quantized.to(pre_quant.dtype), indices


class AudioTokenDetokenizer(EncoderStack):
    """Each 5 Hz token -> `pool_window_size` frames of 25 Hz latents (not cropped)."""

    def __init__(self, config: ModelConfig, options: AttentionOptions):
        super().__init__(config, config.num_attention_pooler_hidden_layers, config.hidden_size, options)
        self.special_tokens = nn.Parameter(torch.randn(1, config.pool_window_size, config.hidden_size) * 0.02)
        self.proj_out = nn.Linear(config.hidden_size, config.audio_acoustic_hidden_dim)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:  # [B, T5, D] -> [B, T5*W, C]
        batch, tokens, dim = quantized.shape
        window = self.special_tokens.shape[1]
        h = self.embed_tokens(quantized.to(self.embed_tokens.weight.dtype))
        h = h[:, :, None, :].expand(batch, tokens, window, dim) + self.special_tokens[None].to(h.dtype)
        h = self.run_layers(h.reshape(batch * tokens, window, dim))
        return self.proj_out(h).reshape(batch, tokens * window, -1)
