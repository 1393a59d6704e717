"""The ACE-Step 1.5 diffusion transformer (`decoder.*` in the checkpoint)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from acetune.model.config import SLIDING, ModelConfig
from acetune.model.fused import norm_modulate
from acetune.model.layers import MLP, RMSNorm, RotaryEmbedding, make_attention
from acetune.model.lean_mlp import CHECKPOINTED_CHUNK_ROWS, CHUNK_ROWS
from acetune.model.masks import AttentionOptions, additive_mask, self_attention_mask

TIMESTEP_CHANNELS = 256
TIMESTEP_SCALE = 1000.0
MAX_PERIOD = 10000.0


class TimestepEmbedding(nn.Module):
    """Sinusoid (cos first) of 1000*t -> MLP -> (temb [B, D], six modulation vectors [B, 6, D])."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear_1 = nn.Linear(TIMESTEP_CHANNELS, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, hidden_size)
        self.time_proj = nn.Linear(hidden_size, 6 * hidden_size)

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.linear_1.weight.dtype
        scaled = t.to(dtype) * TIMESTEP_SCALE  # rounded in the model dtype, as the official code does
        half = TIMESTEP_CHANNELS // 2
        freqs = torch.exp(-math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = scaled[:, None].float() * freqs[None]
        sinusoid = torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dtype)
        temb = self.linear_2(F.silu(self.linear_1(sinusoid)))
        proj = self.time_proj(F.silu(temb)).unflatten(1, (6, self.hidden_size))
        return temb, proj


class _Transpose(nn.Module):
    """Parameter-free [B, L, C] <-> [B, C, L] swap; exists so the conv sits at Sequential index 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


@dataclass
class ConditionCache:
    """A render's condition side: the embedded condition and each layer's cross-attention keys/values.

    They depend on the condition only, so a sampler computes them at its first step and reuses them
    at every other (as the official loop does). One per render; only read without gradients.
    """

    context: torch.Tensor | None = None
    keys_values: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


class DiTLayer(nn.Module):
    """AdaLN-modulated self-attention, plain cross-attention, modulated SwiGLU."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.hidden_size
        self.self_attn_norm = RMSNorm(d, config.rms_norm_eps)
        self.self_attn = make_attention(config)
        self.cross_attn_norm = RMSNorm(d, config.rms_norm_eps)
        self.cross_attn = make_attention(config)
        self.mlp_norm = RMSNorm(d, config.rms_norm_eps)
        self.mlp = MLP(d, config.intermediate_size)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, d) / d**0.5)

    def forward(
        self,
        h: torch.Tensor,  # [B, P, D]
        proj: torch.Tensor,  # [B, 6, D]
        context: torch.Tensor | tuple[torch.Tensor, torch.Tensor],  # [B, S, D], or its cross keys_values
        rope: tuple[torch.Tensor, torch.Tensor],
        self_mask: torch.Tensor | None,
        cross_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        dtype = h.dtype
        shift, scale, gate, c_shift, c_scale, c_gate = (self.scale_shift_table + proj).chunk(6, dim=1)
        x = norm_modulate(h, self.self_attn_norm.weight, self.self_attn_norm.eps, scale, shift)
        h = (h + gate * self.self_attn(x.to(dtype), mask=self_mask, rope=rope)).to(dtype)
        h = h + self.cross_attn(self.cross_attn_norm(h), mask=cross_mask, context=context)
        x = norm_modulate(h, self.mlp_norm.weight, self.mlp_norm.eps, c_scale, c_shift)
        return (h + c_gate * self.mlp(x.to(dtype))).to(dtype)


class DiTModel(nn.Module):
    """Velocity prediction v(x_t, t, r, condition, context) on 25 Hz latents."""

    def __init__(self, config: ModelConfig, options: AttentionOptions | None = None):
        super().__init__()
        self.config, self.options = config, options or AttentionOptions()
        d, c = config.hidden_size, config.audio_acoustic_hidden_dim
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta, self.options.rope_dtype)
        self.layers = nn.ModuleList(DiTLayer(config) for _ in range(config.num_hidden_layers))
        self.proj_in = nn.Sequential(_Transpose(), nn.Conv1d(config.in_channels, d, config.patch_size,
                                                             stride=config.patch_size), _Transpose())
        self.time_embed = TimestepEmbedding(d)
        self.time_embed_r = TimestepEmbedding(d)
        self.condition_embedder = nn.Linear(config.condition_hidden_size, d)
        self.norm_out = RMSNorm(d, config.rms_norm_eps)
        self.proj_out = nn.Sequential(_Transpose(), nn.ConvTranspose1d(d, c, config.patch_size,
                                                                       stride=config.patch_size), _Transpose())
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, d) / d**0.5)
        self._checkpointed: frozenset[int] = frozenset()
        self._mlp_recompute = False

    # --- gradient checkpointing ---------------------------------------------------------
    def set_gradient_checkpointing(self, ratio: float) -> list[int]:
        """Recompute `ratio` of the layers (evenly spaced) in backward; returns their indices.

        Uses non-reentrant checkpointing, which sends gradients to adapter weights inside a
        segment even when the segment's inputs do not require grad (a frozen base).
        """
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"gradient checkpointing ratio must be within [0, 1], got {ratio}")
        n_layers = len(self.layers)
        count = round(n_layers * ratio)
        if count == 0:
            chosen: set[int] = set()
        elif count == 1:
            chosen = {0}
        else:
            chosen = {round(i * (n_layers - 1) / (count - 1)) for i in range(count)}
        self._checkpointed = frozenset(chosen)
        self._configure_mlps()
        return sorted(chosen)

    def set_mlp_recompute(self, enabled: bool) -> list[int]:
        """Keep only each MLP's input for backward (`layers.MLP`); returns the layers where it applies.

        Layers whose MLP projections carry an adapter keep the plain path (their weights alone are
        not the layer's function); call this after attaching adapters.
        """
        self._mlp_recompute = enabled
        self._configure_mlps()
        return [i for i, layer in enumerate(self.layers) if enabled and layer.mlp.plain_projections()]

    def _configure_mlps(self) -> None:
        """Chunk rows of each MLP's recompute: smaller in checkpointed layers (see lean_mlp)."""
        for index, layer in enumerate(self.layers):
            rows = CHECKPOINTED_CHUNK_ROWS if index in self._checkpointed else CHUNK_ROWS
            layer.mlp.recompute_rows = rows if self._mlp_recompute else 0

    @property
    def checkpointed_layers(self) -> list[int]:
        return sorted(self._checkpointed)

    # --- forward --------------------------------------------------------------------------
    def forward(
        self,
        hidden_states: torch.Tensor,  # x_t [B, T, C]
        timestep: torch.Tensor,  # [B]
        timestep_r: torch.Tensor,  # [B]
        encoder_hidden_states: torch.Tensor,  # [B, S, D_cond]
        context_latents: torch.Tensor,  # [B, T, 2C]
        attention_mask: torch.Tensor | None = None,  # [B, T] frames; used only with honor_padding
        encoder_attention_mask: torch.Tensor | None = None,  # [B, S]; used only with honor_padding
        condition_cache: ConditionCache | None = None,  # reused across a render's steps (no-grad calls only)
    ) -> torch.Tensor:
        temb_t, proj_t = self.time_embed(timestep)
        temb_r, proj_r = self.time_embed_r(timestep - timestep_r)
        temb, proj = temb_t + temb_r, proj_t + proj_r

        x = torch.cat([context_latents, hidden_states], dim=-1)  # [B, T, 3C], context first
        if self.options.honor_padding and attention_mask is not None:
            # Zero padded frames so the patch straddling a sample's end sees what it sees alone.
            x = x * attention_mask[..., None].to(x.dtype)
        frames = x.shape[1]
        pad = (-frames) % self.config.patch_size
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        h = self.proj_in(x.to(self.proj_in[1].weight.dtype))  # [B, P, D]
        cache = condition_cache if not torch.is_grad_enabled() else None
        context = self._embedded_condition(encoder_hidden_states.to(h.dtype), cache)

        self_masks, cross_mask = self._masks(h, context, attention_mask, encoder_attention_mask)
        rope = self.rotary_emb(h.shape[1], h.device, h.dtype)
        for index, layer in enumerate(self.layers):
            kind = self.config.layer_types[index]
            cross = context if cache is None else self._cross_keys_values(index, context, cache)
            args = (h, proj, cross, rope, self_masks[kind], cross_mask)
            if index in self._checkpointed and torch.is_grad_enabled():
                h = checkpoint(layer, *args, use_reentrant=False)
            else:
                h = layer(*args)

        shift, scale = (self.scale_shift_table + temb[:, None, :]).chunk(2, dim=1)
        h = self.norm_out(h) * (1 + scale) + shift
        return self.proj_out(h.to(self.proj_out[1].weight.dtype))[:, :frames]

    def _embedded_condition(self, states: torch.Tensor, cache: ConditionCache | None) -> torch.Tensor:
        """condition_embedder(states), or what this render's first step computed."""
        if cache is not None and cache.context is not None:
            return cache.context
        context = self.condition_embedder(states)
        if cache is not None:
            cache.context = context
        return context

    def _cross_keys_values(self, index: int, context: torch.Tensor,
                           cache: ConditionCache) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer `index`'s cross-attention keys/values, computed at the render's first step."""
        if index not in cache.keys_values:
            cache.keys_values[index] = self.layers[index].cross_attn.keys_values(context)
        return cache.keys_values[index]

    def _masks(self, h, context, attention_mask, encoder_attention_mask):
        """Self-attention masks per layer kind and the cross-attention mask."""
        patches, dtype, device = h.shape[1], h.dtype, h.device
        key_valid = cross_valid = None
        if self.options.honor_padding:
            if attention_mask is not None:
                # A patch is valid when its first frame is (valid frames form a prefix).
                key_valid = attention_mask[:, :: self.config.patch_size][:, :patches]
            cross_valid = encoder_attention_mask
        window_convention = self.options.window_convention
        self_masks = {
            kind: self_attention_mask(patches, dtype=dtype, device=device, key_valid=key_valid,
                                      window=self.config.sliding_window if kind == SLIDING else None,
                                      convention=window_convention, banded=True)
            for kind in set(self.config.layer_types)
        }
        cross_mask = None
        if cross_valid is not None:
            cross_mask = additive_mask(patches, context.shape[1], dtype=dtype, device=device, key_valid=cross_valid)
        return self_masks, cross_mask
