"""The condition encoder (`encoder.*`): text projector, lyric encoder, timbre encoder, packing."""

from __future__ import annotations

import torch
from torch import nn

from acetune.model.config import ModelConfig
from acetune.model.layers import EncoderStack
from acetune.model.masks import AttentionOptions


def pack_sequences(
    first: torch.Tensor, second: torch.Tensor, first_mask: torch.Tensor, second_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate along the sequence and move valid positions first (stable), as the official code does.

    Padded positions keep their hidden values (they are not zeroed): the official DiT attends to them.
    Returns states [B, L1+L2, D] and a bool mask whose first sum(mask) positions are True.
    """
    states = torch.cat([first, second], dim=1)
    mask = torch.cat([first_mask, second_mask], dim=1).to(torch.long)
    order = torch.sort(mask, dim=1, descending=True, stable=True).indices
    states = torch.gather(states, 1, order[..., None].expand(-1, -1, states.shape[-1]))
    counts = mask.sum(dim=1, keepdim=True)
    new_mask = torch.arange(mask.shape[1], device=mask.device)[None, :] < counts
    return states, new_mask


class LyricEncoder(EncoderStack):
    """Lyric token embeddings (text-encoder lookup, not transformer outputs) -> contextual states."""

    def __init__(self, config: ModelConfig, options: AttentionOptions):
        super().__init__(config, config.num_lyric_encoder_hidden_layers, config.text_hidden_dim, options)

    def forward(self, lyric_hidden_states: torch.Tensor, lyric_attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.embed_tokens(lyric_hidden_states)
        return self.run_layers(h, key_valid=lyric_attention_mask, max_layers=self.config.num_hidden_layers)


class TimbreEncoder(EncoderStack):
    """Reference-audio latents -> one embedding per clip (row 0), unpacked per batch item."""

    def __init__(self, config: ModelConfig, options: AttentionOptions, prepend_special_token: bool):
        super().__init__(config, config.num_timbre_encoder_hidden_layers, config.timbre_hidden_dim, options)
        # Present in every checkpoint; only XL prepends it (2B reads row 0 = the first audio frame).
        self.special_token = nn.Parameter(torch.randn(1, 1, config.hidden_size))
        self.prepend_special_token = prepend_special_token

    def forward(
        self, packed: torch.Tensor, order: torch.Tensor, batch_size: int  # [N, Tr, C], [N] batch index per clip
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed_tokens(packed)
        if self.prepend_special_token:
            h = torch.cat([self.special_token.expand(h.shape[0], -1, -1).to(h.dtype), h], dim=1)
        h = self.run_layers(h, max_layers=self.config.num_hidden_layers)[:, 0]  # [N, D]
        return unpack_clips(h, order, batch_size)


def unpack_clips(clips: torch.Tensor, order: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, D] clips with batch indices -> [B, max_count, D] (clip order kept, empty slots zero) and a long mask."""
    order = order.to(device=clips.device, dtype=torch.long)
    one_hot = torch.nn.functional.one_hot(order, batch_size)  # [N, B]
    slot = (one_hot.cumsum(0) * one_hot).sum(1) - 1  # position of each clip within its batch item
    counts = one_hot.sum(0)
    max_count = int(counts.max()) if clips.shape[0] else 0
    out = clips.new_zeros(batch_size, max_count, clips.shape[-1])
    out[order, slot] = clips
    mask = (torch.arange(max_count, device=clips.device)[None, :] < counts[:, None]).to(torch.long)
    return out, mask


class ConditionEncoder(nn.Module):
    """Caption features, lyric embeddings and reference audio -> packed condition sequence."""

    def __init__(self, config: ModelConfig, options: AttentionOptions, xl: bool = False):
        super().__init__()
        self.text_projector = nn.Linear(config.text_hidden_dim, config.hidden_size, bias=False)
        self.lyric_encoder = LyricEncoder(config, options)
        self.timbre_encoder = TimbreEncoder(config, options, prepend_special_token=xl)

    def forward(
        self,
        text_hidden_states: torch.Tensor,  # [B, Lt, text_dim]
        text_attention_mask: torch.Tensor,  # [B, Lt]
        lyric_hidden_states: torch.Tensor,  # [B, Ll, text_dim]
        lyric_attention_mask: torch.Tensor,  # [B, Ll]
        refer_audio_acoustic_hidden_states_packed: torch.Tensor,  # [N, Tr, C]
        refer_audio_order_mask: torch.Tensor,  # [N]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.text_projector.weight.dtype
        text = self.text_projector(text_hidden_states.to(dtype))
        lyrics = self.lyric_encoder(lyric_hidden_states.to(dtype), lyric_attention_mask)
        timbre, timbre_mask = self.timbre_encoder(refer_audio_acoustic_hidden_states_packed.to(dtype),
                                                  refer_audio_order_mask, text.shape[0])
        states, mask = pack_sequences(lyrics, timbre, lyric_attention_mask, timbre_mask)
        return pack_sequences(states, text, mask, text_attention_mask)
