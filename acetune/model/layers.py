"""Building blocks shared by the DiT and every encoder stack (Qwen3-style).

RMSNorm and RoPE follow Qwen3's rounding order exactly (normalise in fp32, cast back, then
scale; cos/sin in fp32 then cast). RoPE's frequencies follow `RopeDtype`: the official app
casts the whole model (`model.to(bf16)`), rounding the rotary `inv_freq` buffer to bf16, and
then computes angle = float(bf16(inv_freq)) * position in fp32 (golden README section 8).

They are written here rather than imported from transformers because its rotary module needs
a Qwen3Config and keeps a buffer that meta-device construction leaves uninitialised, and
importing transformers costs seconds at CLI start for six lines of arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acetune.config.schema import RopeDtype
from acetune.model.config import SLIDING, ModelConfig
from acetune.model.banded import BandedMask, banded_attention, masked_sdpa
from acetune.model.fused import norm_rope, rms_norm, swiglu
from acetune.model.lean_mlp import recomputing_swiglu_mlp
from acetune.model.masks import AttentionOptions, additive_mask


class RMSNorm(nn.Module):
    """Qwen3RMSNorm: y = weight * (x * rsqrt(mean(x^2) + eps)) computed in fp32, cast before scaling."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


class RotaryEmbedding(nn.Module):
    """Default (unscaled) RoPE over the full head dim; holds no state, so nothing to load or rebuild.

    `rope_dtype` MODEL rounds the frequencies to the compute dtype `forward` is given (the dtype
    of the hidden states: bf16 for a bf16 model or under bf16 autocast), as the official app's
    cast model does; FP32 keeps them in fp32. Angles are computed in fp32 either way.
    """

    def __init__(self, head_dim: int, theta: float, rope_dtype: RopeDtype = RopeDtype.MODEL):
        super().__init__()
        self.head_dim = head_dim
        self.theta = theta
        self.rope_dtype = RopeDtype(rope_dtype)

    def inverse_frequencies(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """[hd/2] fp32 frequencies, rounded through `dtype` under the MODEL convention."""
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.int64, device=device).float() / self.head_dim
        inv_freq = 1.0 / (self.theta**exponents)
        if self.rope_dtype is RopeDtype.MODEL and dtype.is_floating_point:
            inv_freq = inv_freq.to(dtype).float()
        return inv_freq

    def forward(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = self.inverse_frequencies(device, dtype)
        positions = torch.arange(length, device=device, dtype=torch.float32)
        angles = positions[:, None] * inv_freq[None, :]  # [L, hd/2]
        emb = torch.cat([angles, angles], dim=-1)  # [L, hd]
        return emb.cos().to(dtype), emb.sin().to(dtype)


class Attention(nn.Module):
    """Multi-head attention with GQA and q/k RMSNorm, run through `scaled_dot_product_attention`."""

    def __init__(self, hidden_size: int, num_heads: int, num_kv_heads: int, head_dim: int, eps: float,
                 dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.dropout = dropout
        self.q_proj = nn.Linear(hidden_size, num_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=bias)
        self.o_proj = nn.Linear(num_heads * head_dim, hidden_size, bias=bias)
        self.q_norm = RMSNorm(head_dim, eps)
        self.k_norm = RMSNorm(head_dim, eps)

    def forward(
        self,
        x: torch.Tensor,  # [B, L, D]
        *,
        mask: torch.Tensor | BandedMask | None = None,  # additive [B|1, 1, L, S], or a sliding band
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        context: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,  # [B, S, D], or its keys_values
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.num_heads, self.head_dim)
        if rope is None:
            q = self.q_norm(q)
            k, v = context if isinstance(context, tuple) else self.keys_values(x if context is None else context)
        else:  # q/k norm then rotary, as one function that saves only its input
            q = norm_rope(q, self.q_norm.weight, self.q_norm.eps, *rope)
            k = self.k_proj(x).view(batch, length, self.num_kv_heads, self.head_dim)
            k = norm_rope(k, self.k_norm.weight, self.k_norm.eps, *rope).transpose(1, 2)
            v = self.v_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = q.transpose(1, 2)
        dropout = self.dropout if self.training else 0.0
        if mask is None:
            # No mask lets CUDA pick the flash kernel, which handles GQA natively.
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, enable_gqa=self.num_heads != self.num_kv_heads)
        elif isinstance(mask, BandedMask):
            out = banded_attention(q, k, v, mask, dropout)
        else:
            out = masked_sdpa(q, k, v, mask, dropout)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normed keys and values of `source` [B, S, D] as [B, Hkv, S, hd] (no rotary: cross-attention's).

        A render reuses them across sampler steps: they depend on the condition only.
        """
        batch, length, _ = source.shape
        k = self.k_norm(self.k_proj(source).view(batch, length, self.num_kv_heads, self.head_dim))
        v = self.v_proj(source).view(batch, length, self.num_kv_heads, self.head_dim)
        return k.transpose(1, 2), v.transpose(1, 2)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)), no biases.

    `recompute_rows` > 0 (set by `DiTModel.set_mlp_recompute`) runs it through `recomputing_swiglu_mlp`
    in chunks of that many token rows, which keeps only x for backward, whenever gradients are
    recorded. That reads the projections' weights directly, so it is used only while all three are
    plain `nn.Linear`s no adapter wrapped or patched.
    """

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.recompute_rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute_rows and torch.is_grad_enabled() and self.plain_projections():  # renders: nothing to save
            return recomputing_swiglu_mlp(x, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight,
                                          self.recompute_rows)
        return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))

    def plain_projections(self) -> bool:
        """No adapter on the projections: unwrapped, no patched forward (LyCORIS), no hooks, no bias."""
        return all(type(m) is nn.Linear and "forward" not in vars(m) and m.bias is None
                   and not (m._forward_hooks or m._forward_pre_hooks)
                   for m in (self.gate_proj, self.up_proj, self.down_proj))


def make_attention(config: ModelConfig) -> Attention:
    return Attention(config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
                     config.head_dim, config.rms_norm_eps, config.attention_dropout, config.attention_bias)


class EncoderLayer(nn.Module):
    """Bidirectional pre-norm block: h += attn(norm(h)); h += mlp(norm(h))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = make_attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config.hidden_size, config.intermediate_size)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), mask=mask, rope=rope)
        return h + self.mlp(self.post_attention_layernorm(h))


class EncoderStack(nn.Module):
    """`embed_tokens` -> encoder layers -> `norm`: the shape shared by lyric, timbre, pooler and detokenizer.

    Layer i uses `layer_types[i]` of the global list, as every official stack does.
    """

    def __init__(self, config: ModelConfig, num_layers: int, input_dim: int, options: AttentionOptions):
        super().__init__()
        self.config, self.options = config, options
        self.embed_tokens = nn.Linear(input_dim, config.hidden_size, bias=True)
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta, options.rope_dtype)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(num_layers))

    def run_layers(self, h: torch.Tensor, key_valid: torch.Tensor | None = None, max_layers: int | None = None) -> torch.Tensor:
        """Run the layers (optionally only the first `max_layers`) and the final norm on [B, L, D]."""
        length = h.shape[1]
        rope = self.rotary_emb(length, h.device, h.dtype)
        masks: dict[str, torch.Tensor | None] = {}
        layers = list(self.layers)[: max_layers if max_layers is not None else len(self.layers)]
        for index, layer in enumerate(layers):
            kind = self.config.layer_types[index]
            if kind not in masks:
                window = self.config.sliding_window if kind == SLIDING else None
                masks[kind] = additive_mask(length, length, dtype=h.dtype, device=h.device, key_valid=key_valid,
                                            window=window, convention=self.options.window_convention)
            h = layer(h, masks[kind], rope)
        return self.norm(h)
