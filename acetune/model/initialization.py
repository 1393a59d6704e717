"""Fresh weights for models trained from scratch (tiny test and demo models).

Follows the official initialisation (spec §8): Linear N(0, 0.02) with zero bias, RMSNorm 1,
convs PyTorch default, scale/shift tables randn/sqrt(D), pooler/detokenizer special tokens
randn*0.02, timbre special token and null condition randn. Real checkpoints are loaded, not
initialised.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from acetune.model.acestep import AceStepModel
from acetune.model.layers import RMSNorm


@torch.no_grad()
def init_weights(model: AceStepModel, seed: int = 0) -> AceStepModel:
    """Deterministically initialise every parameter from `seed` (independent of global RNG state)."""
    gen = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range

    def normal_(t: torch.Tensor, scale: float) -> None:
        t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32) * scale)

    for module in model.modules():
        if isinstance(module, nn.Linear):
            normal_(module.weight, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, RMSNorm):
            module.weight.fill_(1.0)
        elif isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            fan_in = module.weight.shape[1] * module.weight.shape[2]
            if isinstance(module, nn.ConvTranspose1d):
                fan_in = module.weight.shape[0] * module.weight.shape[2]
            bound = 1.0 / math.sqrt(fan_in)
            module.weight.copy_((torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound)
            module.bias.copy_((torch.rand(module.bias.shape, generator=gen) * 2 - 1) * bound)
    # Unit-variance velocity outputs for unit-RMS hidden states: a tiny random model can then reach
    # the target's scale through adapters alone (PyTorch's default conv init caps it near 0.5).
    out = model.decoder.proj_out[1]
    normal_(out.weight, 1.0 / math.sqrt(out.weight.shape[0]))
    for name, param in model.named_parameters():
        if name.endswith("scale_shift_table"):
            normal_(param, 1.0 / math.sqrt(param.shape[-1]))
        elif name.endswith(("attention_pooler.special_token", "detokenizer.special_tokens")):
            normal_(param, 0.02)
        elif name.endswith("timbre_encoder.special_token") or name == "null_condition_emb":
            normal_(param, 1.0)
    return model
