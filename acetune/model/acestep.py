"""`AceStepModel`: our ACE-Step 1.5 network, whose `state_dict()` is the official checkpoint's, key for key."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from acetune.model.config import ModelConfig
from acetune.model.dit import DiTModel
from acetune.model.encoder import ConditionEncoder
from acetune.model.masks import AttentionOptions
from acetune.model.tokenizer import AudioTokenDetokenizer, AudioTokenizer


@dataclass(frozen=True)
class Condition:
    """What the decoder is conditioned on (the outputs of `prepare_condition`)."""

    encoder_hidden_states: torch.Tensor  # [B, S, D_cond]
    encoder_attention_mask: torch.Tensor  # [B, S] bool
    context_latents: torch.Tensor  # [B, T, 2C]


class AceStepModel(nn.Module):
    """decoder (DiT) + encoder (conditions) + tokenizer/detokenizer (cover hints) + null condition."""

    def __init__(self, config: ModelConfig, options: AttentionOptions | None = None):
        super().__init__()
        options = options or AttentionOptions()
        self.config, self.options = config, options
        cond = config.condition_side()
        self.decoder = DiTModel(config, options)
        self.encoder = ConditionEncoder(cond, options, xl=config.is_xl)
        self.tokenizer = AudioTokenizer(cond, options)
        self.detokenizer = AudioTokenDetokenizer(cond, options)
        self.null_condition_emb = nn.Parameter(torch.randn(1, 1, cond.hidden_size))

    @property
    def dtype(self) -> torch.dtype:
        return self.null_condition_emb.dtype

    # --- audio tokens ------------------------------------------------------------------
    def tokenize(
        self, latents: torch.Tensor, silence_latent: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[B, T, C] latents -> (quantized [B, T5, D], indices [B, T5, Q], pooled mask [B, T5]).

        T is padded up to a multiple of the pool window with the first frames of the silence
        latent ([1, Ts, C], time-major), not zeros, as the official code does.
        """
        window = self.config.pool_window_size
        batch, frames, channels = latents.shape
        pad = (-frames) % window
        if pad:
            filler = silence_latent[0, :pad].to(latents)[None].expand(batch, pad, channels)
            latents = torch.cat([latents, filler], dim=1)
            attention_mask = torch.nn.functional.pad(attention_mask, (0, pad))
        windows = latents.reshape(batch, -1, window, channels)
        pooled_mask = attention_mask.reshape(batch, -1, window).amax(dim=-1)
        quantized, indices = self.tokenizer(windows)
        return quantized, indices, pooled_mask

    def detokenize(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.detokenizer(quantized)

    def codes_to_hints(self, indices: torch.Tensor) -> torch.Tensor:
        """5 Hz FSQ codes [B, T5, Q] -> 25 Hz hints [B, 5*T5, C] (the 5 Hz LM path)."""
        quantized = self.tokenizer.quantizer.get_output_from_indices(indices)
        return self.detokenize(quantized.to(self.dtype))

    # --- conditions --------------------------------------------------------------------
    @torch.no_grad()
    def prepare_condition(
        self,
        *,
        text_hidden_states: torch.Tensor,
        text_attention_mask: torch.Tensor,
        lyric_hidden_states: torch.Tensor,
        lyric_attention_mask: torch.Tensor,
        refer_audio_acoustic_hidden_states_packed: torch.Tensor,
        refer_audio_order_mask: torch.Tensor,
        src_latents: torch.Tensor,  # [B, T, C]
        chunk_masks: torch.Tensor,  # [B, T, C]
        is_covers: torch.Tensor,  # [B]
        silence_latent: torch.Tensor,  # [1, Ts, C]
        attention_mask: torch.Tensor,  # [B, T]
        precomputed_lm_hints_25hz: torch.Tensor | None = None,
    ) -> Condition:
        """Condition encoder + context latents, as the official `prepare_condition` (no gradients)."""
        states, mask = self.encoder(text_hidden_states, text_attention_mask, lyric_hidden_states,
                                    lyric_attention_mask, refer_audio_acoustic_hidden_states_packed,
                                    refer_audio_order_mask)
        context = self.context_latents(src_latents, chunk_masks, is_covers, silence_latent, attention_mask,
                                       precomputed_lm_hints_25hz)
        return Condition(states, mask, context)

    @torch.no_grad()
    def context_latents(self, src_latents: torch.Tensor, chunk_masks: torch.Tensor, is_covers: torch.Tensor,
                        silence_latent: torch.Tensor, attention_mask: torch.Tensor,
                        precomputed_lm_hints_25hz: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, 2C]: the source (its tokenize -> detokenize hints where `is_covers`) beside the chunk mask."""
        frames = src_latents.shape[1]
        src = src_latents.to(self.dtype)
        covers = is_covers.to(src.device) > 0
        if bool(covers.any()):
            # The official code always tokenizes; the hints only matter where is_covers is set.
            if precomputed_lm_hints_25hz is not None:
                hints = precomputed_lm_hints_25hz[:, :frames].to(src)
            else:
                quantized, _, _ = self.tokenize(src, silence_latent, attention_mask)
                hints = self.detokenize(quantized)[:, :frames]
            src = torch.where(covers[:, None, None], hints, src)
        return torch.cat([src, chunk_masks.to(src.dtype)], dim=-1)
