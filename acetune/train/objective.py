"""The objective ACE-Step 1.5 was pre-trained with: flow matching on velocity, logit-normal timesteps.

Each random draw is a separate function taking an explicit generator, so tests (and exact
resume) can inject or replay them. The order of draws in `flow_matching_loss` is the
official one: CFG uniform [B], noise like x0, then two normal draws [B] for t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from acetune.model.acestep import AceStepModel, Condition

DEFAULT_CFG_RATIO = 0.15


@dataclass(frozen=True)
class Draws:
    """The four random tensors of one official training step."""

    cfg_u: torch.Tensor  # [B] uniform; u < cfg_ratio -> null condition
    noise: torch.Tensor  # [B, T, C] standard normal, x1
    n_t: torch.Tensor  # [B] standard normal
    n_r: torch.Tensor  # [B] standard normal


def draw(batch: int, latent_shape: torch.Size, generator: torch.Generator | None = None,
         device: torch.device | str = "cpu") -> Draws:
    """Draw in the official order from one generator."""
    cfg_u = torch.rand(batch, generator=generator, device=device)
    noise = torch.randn(latent_shape, generator=generator, device=device)
    n_t = torch.randn(batch, generator=generator, device=device)
    n_r = torch.randn(batch, generator=generator, device=device)
    return Draws(cfg_u, noise, n_t, n_r)


def logit_normal_max_of_two(n_t: torch.Tensor, n_r: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """t = sigmoid(max(n_t, n_r) * sigma + mu): the larger of two logit-normal samples (r = t)."""
    return torch.sigmoid(torch.maximum(n_t, n_r) * sigma + mu)


def apply_cfg_dropout(states: torch.Tensor, null_embedding: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Replace every position of the dropped samples' condition by the learned null embedding.

    The mask is left as it is, as in the official code.
    """
    null = null_embedding.to(states.dtype).expand_as(states)
    return torch.where(drop.to(states.device)[:, None, None], null, states)


@dataclass(frozen=True)
class LossOut:
    loss: torch.Tensor  # scalar
    t: torch.Tensor  # [B]
    prediction: torch.Tensor  # [B, T, C]


def flow_matching_loss(
    model: AceStepModel,
    x0: torch.Tensor,  # clean latents [B, T, C]
    condition: Condition,
    draws: Draws,
    *,
    cfg_ratio: float = DEFAULT_CFG_RATIO,
    attention_mask: torch.Tensor | None = None,
) -> LossOut:
    """MSE between the predicted velocity and noise - x0 at x_t = t*noise + (1-t)*x0, all elements averaged."""
    config = model.config
    states = apply_cfg_dropout(condition.encoder_hidden_states, model.null_condition_emb, draws.cfg_u < cfg_ratio)
    t = logit_normal_max_of_two(draws.n_t, draws.n_r, config.timestep_mu, config.timestep_sigma)
    t_b = t[:, None, None]
    x_t = t_b * draws.noise + (1 - t_b) * x0
    prediction = model.decoder(x_t, t, t, states, condition.context_latents,
                               attention_mask=attention_mask,
                               encoder_attention_mask=condition.encoder_attention_mask)
    loss = F.mse_loss(prediction.float(), (draws.noise - x0).float())
    return LossOut(loss, t, prediction)
