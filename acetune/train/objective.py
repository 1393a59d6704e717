"""The objective ACE-Step 1.5 was pre-trained with: flow matching on velocity, logit-normal timesteps.

`Objective` owns every random draw and weighting of a training step; the loop only calls
`objective.loss(model, batch, rng)` and backpropagates what it returns.

Each random draw takes an explicit generator so tests (and exact resume) can inject or replay
it. The order of draws is the official one: CFG uniform [B], noise like x0, then the timestep
draws [B] (two normals for logit-normal, one index for the discrete schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from acetune.config import LossWeighting, ObjectiveConfig, Task, TimestepMode
from acetune.model.acestep import AceStepModel, Condition
from acetune.train.adaptive import AdaptiveTimesteps
from acetune.train.batching import Batch
from acetune.train.tasks import TaskInputs, TaskSampler

DEFAULT_CFG_RATIO = 0.15
# The turbo shift-3 inference steps t = 3τ / (1 + 2τ), τ = 1, 7/8, ..., 1/8: the upstream turbo trainer's t.
DISCRETE_TIMESTEPS = (1.0, 0.9545454545454546, 0.9, 0.8333333333333334, 0.75, 0.6428571428571429, 0.5, 0.3)


@dataclass(frozen=True)
class Draws:
    """The random tensors of one official training step."""

    cfg_u: torch.Tensor  # [B] uniform; u < cfg_ratio -> null condition
    noise: torch.Tensor  # [B, T, C] standard normal, x1
    n_t: torch.Tensor  # [B] standard normal (discrete mode: schedule index as float)
    n_r: torch.Tensor  # [B] standard normal (unused in discrete mode)


def draw(batch: int, latent_shape: torch.Size, generator: torch.Generator | None = None,
         device: torch.device | str = "cpu", discrete: bool = False) -> Draws:
    """Draw in the official order from one generator (on `device`)."""
    cfg_u = torch.rand(batch, generator=generator, device=device)
    noise = torch.randn(latent_shape, generator=generator, device=device)
    if discrete:
        index = torch.randint(len(DISCRETE_TIMESTEPS), (batch,), generator=generator, device=device).float()
        return Draws(cfg_u, noise, index, torch.zeros_like(index))
    n_t = torch.randn(batch, generator=generator, device=device)
    n_r = torch.randn(batch, generator=generator, device=device)
    return Draws(cfg_u, noise, n_t, n_r)


def logit_normal_max_of_two(n_t: torch.Tensor, n_r: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """t = sigmoid(max(n_t, n_r) * sigma + mu): the larger of two logit-normal samples (r = t)."""
    return torch.sigmoid(torch.maximum(n_t, n_r) * sigma + mu)


def timesteps_from(draws: Draws, *, discrete: bool, mu: float, sigma: float) -> torch.Tensor:
    if discrete:
        table = torch.tensor(DISCRETE_TIMESTEPS, device=draws.n_t.device)
        return table[draws.n_t.long()]
    return logit_normal_max_of_two(draws.n_t, draws.n_r, mu, sigma)


def apply_cfg_dropout(states: torch.Tensor, null_embedding: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Replace every position of the dropped samples' condition by the learned null embedding.

    The mask is left as it is, as in the official code.
    """
    null = null_embedding.to(states.dtype).expand_as(states)
    return torch.where(drop.to(states.device)[:, None, None], null, states)


def min_snr_weights(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """w = min(SNR, gamma) / SNR with SNR = ((1 - t) / t)^2: nearly clean samples are down-weighted."""
    t = t.float().clamp(1e-4, 1 - 1e-4)
    snr = ((1 - t) / t).pow(2).clamp(max=1e6)
    return snr.clamp(max=gamma) / snr.clamp(min=1e-6)


@dataclass(frozen=True)
class LossOut:
    loss: torch.Tensor  # scalar
    t: torch.Tensor  # [B]
    prediction: torch.Tensor  # [B, T, C]
    per_sample: torch.Tensor | None = None  # [B] unweighted MSE per sample


def flow_matching_loss(
    model: AceStepModel,
    x0: torch.Tensor,  # clean latents [B, T, C]
    condition: Condition,
    draws: Draws,
    *,
    cfg_ratio: float = DEFAULT_CFG_RATIO,
    attention_mask: torch.Tensor | None = None,
) -> LossOut:
    """The official training loss: MSE between the predicted velocity and noise - x0, all elements averaged."""
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


def velocity_loss(
    decoder,
    null_embedding: torch.Tensor,
    x0: torch.Tensor,  # [B, T, C]
    frame_mask: torch.Tensor,  # [B, T] 1 = real frame
    encoder_hidden_states: torch.Tensor,  # [B, L, D]
    encoder_mask: torch.Tensor,  # [B, L]
    context_latents: torch.Tensor,  # [B, T, 2C]
    draws: Draws,
    *,
    t: torch.Tensor,  # [B]
    cfg_ratio: float,
    weights: torch.Tensor | None = None,  # [B] loss weights (min-SNR), None = 1
) -> LossOut:
    """The same objective on padded batches: each sample's MSE over its real frames, then the batch mean.

    Without padding and weighting this equals the official all-element mean.
    """
    states = apply_cfg_dropout(encoder_hidden_states, null_embedding, draws.cfg_u < cfg_ratio)
    t_b = t[:, None, None].to(x0.dtype)
    x_t = t_b * draws.noise.to(x0.dtype) + (1 - t_b) * x0
    prediction = decoder(x_t, t, t, states, context_latents, frame_mask, encoder_mask)
    target = (draws.noise - x0).float()
    squared = (prediction.float() - target).pow(2).mean(dim=-1)  # [B, T]
    valid = frame_mask.float()
    per_sample = (squared * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1)
    weighted = per_sample if weights is None else per_sample * weights
    return LossOut(weighted.mean(), t, prediction, per_sample.detach())


@dataclass(frozen=True)
class Denoiser:
    """What the objective calls: the decoder as the step runs it (DDP wrapper, FSDP module or itself)."""

    decoder: Callable[..., torch.Tensor]
    null_embedding: torch.Tensor  # [1, 1, D] the learned null condition (CFG dropout)
    timestep_mu: float
    timestep_sigma: float
    # (src [B, T, C], chunk masks [B, T, C], is_covers [B], frame mask [B, T]) -> context latents [B, T, 2C];
    # only runs that train cover load the tokenizer and detokenizer it needs
    context: Callable[..., torch.Tensor] | None = None


@dataclass(frozen=True)
class LossOutput:
    loss: torch.Tensor  # scalar: the weighted mean over this rank's samples
    per_sample: torch.Tensor  # [b] unweighted, detached
    t: torch.Tensor  # [b] CPU
    weights: torch.Tensor | None  # [b] min-SNR weights, None = 1


class Objective:
    """The training objective of a run: timestep draws, noise, CFG dropout, adaptive bins and min-SNR.

    `loss` draws for the whole global batch (`batch.global_size` rows) from the run's generator
    and keeps this rank's rows (`batch.rows`), so N data-parallel ranks compute what one process
    with the global batch computes. `learn` feeds the adaptive bins; `state_dict` is what a
    resume restores.
    """

    def __init__(self, config: ObjectiveConfig):
        self.config = config
        self.tasks = TaskSampler(config)
        self.discrete = config.timesteps == TimestepMode.DISCRETE
        # the discrete schedule has no continuous t to adapt
        adaptive = config.adaptive_timestep_ratio > 0 and not self.discrete
        self.adaptive = AdaptiveTimesteps(config.adaptive_timestep_ratio) if adaptive else None

    @property
    def adapts(self) -> bool:
        """Does it learn from the losses (`learn`)?"""
        return self.adaptive is not None

    def loss(self, model: Denoiser, batch: Batch, rng: torch.Generator) -> LossOutput:
        device = batch.target_latents.device
        whole = draw(batch.global_size, torch.Size([batch.global_size, *batch.target_latents.shape[1:]]), rng,
                     discrete=self.discrete)
        t = self._timesteps(whole, model, rng)[batch.rows]
        weights = None
        if self.config.loss_weighting == LossWeighting.MIN_SNR:
            weights = min_snr_weights(t, self.config.snr_gamma).to(device)
        draws = Draws(whole.cfg_u[batch.rows].to(device), whole.noise[batch.rows].to(device),
                      whole.n_t[batch.rows], whole.n_r[batch.rows])
        states, mask, context = self.conditions(model, batch, rng)
        out = velocity_loss(model.decoder, model.null_embedding, batch.target_latents, batch.frame_mask,
                            states, mask, context, draws, t=t.to(device), cfg_ratio=self.config.cfg_ratio,
                            weights=weights)
        return LossOutput(out.loss, out.per_sample, t, weights)

    def conditions(self, model: Denoiser, batch: Batch,
                   rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(encoder states, their mask, context latents) of each row under its task (train/tasks.py)."""
        if not self.tasks.draws:
            return batch.encoder_hidden_states, batch.encoder_mask, batch.context_latents
        inputs = self.task_inputs(batch, rng)
        context = torch.cat([inputs.src_latents, inputs.chunk_masks], dim=-1)
        if bool(inputs.is_covers.any()):
            context = model.context(inputs.src_latents, inputs.chunk_masks, inputs.is_covers,
                                    batch.frame_mask).to(context)
        states, mask = batch.encoder_hidden_states.clone(), batch.encoder_mask.clone()
        for row, task in enumerate(inputs.tasks):
            if task != Task.TEXT2MUSIC:
                states[row], mask[row] = batch.task_conditions[task][0][row], batch.task_conditions[task][1][row]
        return states, mask, context

    def task_inputs(self, batch: Batch, rng: torch.Generator) -> TaskInputs:
        """Each row's task, source latents, chunk mask and cover flag (drawn after the objective's draws)."""
        tasks, uniforms = self.tasks.draw(batch.global_size, batch.rows, rng)
        return self.tasks.inputs(tasks, uniforms, batch.target_latents, batch.context_latents)

    def _timesteps(self, whole: Draws, model: Denoiser, rng: torch.Generator) -> torch.Tensor:
        t = timesteps_from(whole, discrete=self.discrete, mu=model.timestep_mu, sigma=model.timestep_sigma)
        return t if self.adaptive is None else self.adaptive.apply(t, rng)

    def learn(self, out: LossOutput, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Feed a kept micro-batch's losses to the adaptive bins (`reduce` sums them over the ranks)."""
        if self.adaptive is not None:
            sums, counts = self.adaptive.bin_totals(out.t, out.per_sample)
            self.adaptive.update(reduce(sums), reduce(counts))

    def state_dict(self) -> dict | None:
        return None if self.adaptive is None else self.adaptive.state()

    def load_state_dict(self, state: dict | None) -> None:
        if self.adaptive is not None and state is not None:
            self.adaptive.load_state(state)
