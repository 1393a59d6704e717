"""Timestep samplers, loss weighting, the padded-batch loss against the golden one, and lr schedules."""

from __future__ import annotations

import math

import pytest
import torch

from acetune.config import ScheduleConfig, SchedulerKind
from acetune.train.objective import (DISCRETE_TIMESTEPS, Draws, draw, min_snr_weights, timesteps_from,
                                     velocity_loss)
from acetune.train.optim import lr_factor, warmup_steps

CONDITION_INPUTS = (
    "text_hidden_states", "text_attention_mask", "lyric_hidden_states", "lyric_attention_mask",
    "refer_audio_acoustic_hidden_states_packed", "refer_audio_order_mask", "src_latents", "chunk_masks",
    "is_covers", "silence_latent", "attention_mask",
)


def test_velocity_loss_reproduces_the_golden_loss(golden_model, golden_inputs, golden):
    """With every frame real and no weighting, the padded-batch loss is the official one."""
    i = golden_inputs
    golden_model.train()
    cond = golden_model.prepare_condition(**{k: i[k] for k in CONDITION_INPUTS})
    draws = Draws(golden["rng.cfg_u"], golden["rng.noise"], golden["rng.n_t"], golden["rng.n_r"])
    t = timesteps_from(draws, discrete=False, mu=-0.4, sigma=1.0)
    out = velocity_loss(golden_model.decoder, golden_model.null_condition_emb, i["hidden_states"],
                        torch.ones(2, 40, dtype=torch.long), cond.encoder_hidden_states,
                        cond.encoder_attention_mask, cond.context_latents, draws, t=t, cfg_ratio=0.15)
    assert abs(out.loss.item() - golden["out.training.diffusion_loss"].item()) <= 1e-5


def test_padded_frames_do_not_count():
    decoder = lambda x, t, r, s, c, m, em: torch.zeros_like(x)  # noqa: E731 - predicts zero velocity
    x0 = torch.zeros(2, 6, 4)
    noise = torch.ones(2, 6, 4)
    noise[1, 3:] = 100.0  # huge error only on sample 1's padded frames
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    draws = Draws(torch.ones(2), noise, torch.zeros(2), torch.zeros(2))
    out = velocity_loss(decoder, torch.zeros(1, 1, 8), x0, mask, torch.zeros(2, 3, 8), torch.ones(2, 3),
                        torch.zeros(2, 6, 8), draws, t=torch.full((2,), 0.5), cfg_ratio=0.0)
    assert out.loss.item() == pytest.approx(1.0)
    assert out.per_sample.tolist() == [1.0, 1.0]


def test_discrete_timesteps_come_from_the_turbo_table():
    g = torch.Generator().manual_seed(0)
    draws = draw(400, torch.Size([400, 2, 1]), g, discrete=True)
    t = timesteps_from(draws, discrete=True, mu=0.0, sigma=1.0)
    assert set(round(v, 6) for v in t.tolist()) == set(round(v, 6) for v in DISCRETE_TIMESTEPS)


def test_logit_normal_max_of_two_distribution():
    g = torch.Generator().manual_seed(1)
    draws = draw(200_000, torch.Size([1]), g)
    t = timesteps_from(draws, discrete=False, mu=-0.4, sigma=1.0)
    # P(t <= 0.5) = Phi((logit(0.5) + 0.4) / 1)^2 = Phi(0.4)^2
    expected = (0.5 * (1 + math.erf(0.4 / math.sqrt(2)))) ** 2
    assert (t <= 0.5).float().mean().item() == pytest.approx(expected, abs=0.005)


def test_min_snr_weights():
    w = min_snr_weights(torch.tensor([0.05, 0.5, 0.95]), gamma=5.0)
    snr_clean = ((1 - 0.05) / 0.05) ** 2
    assert w.tolist() == pytest.approx([5.0 / snr_clean, 1.0, 1.0])


@pytest.mark.parametrize("kind", list(SchedulerKind))
def test_schedule_shapes(kind):
    config = ScheduleConfig(scheduler=kind, warmup_steps=10, warmup_start_factor=0.1, min_lr_ratio=0.01, restarts=4)
    total = 200
    factors = [lr_factor(s, config, total) for s in range(total + 1)]
    if kind == SchedulerKind.CONSTANT:
        assert factors == [1.0] * (total + 1)
        return
    assert warmup_steps(config, total) == 10
    assert factors[0] == pytest.approx(0.1) and factors[5] == pytest.approx(0.55) and factors[10] == pytest.approx(1.0)
    if kind == SchedulerKind.COSINE:
        assert factors[total] == pytest.approx(0.01)
        assert factors[105] == pytest.approx(0.505)
    if kind == SchedulerKind.LINEAR:
        assert factors[total] == pytest.approx(0.01) and factors[105] == pytest.approx(0.505)
    if kind == SchedulerKind.COSINE_RESTARTS:
        cycle = 190 // 4
        assert factors[10 + cycle] == pytest.approx(1.0)  # back to the peak at each restart
        assert min(factors[10:10 + cycle]) > 0.01
    if kind == SchedulerKind.CONSTANT_WITH_WARMUP:
        assert factors[10:] == [1.0] * (total - 9)


def test_warmup_is_clamped_to_a_tenth_of_the_run():
    config = ScheduleConfig(warmup_steps=100)
    assert warmup_steps(config, 50) == 5 and warmup_steps(config, 5) == 1


@pytest.mark.parametrize("kind", ["adamw", "adafactor", "prodigy"])
def test_each_optimizer_builds_and_steps(kind):
    from acetune.config import OptimConfig, OptimizerKind
    from acetune.train.optim import build_optimizer

    weight = torch.nn.Parameter(torch.ones(4, 4))
    lr = 1.0 if kind == "prodigy" else 1e-2  # Prodigy estimates the step size itself; lr is a multiplier
    optimizer = build_optimizer([{"params": [weight]}], OptimConfig(optimizer=OptimizerKind(kind), lr=lr),
                                torch.device("cpu"))
    for _ in range(30):  # Prodigy starts from a tiny step size estimate and grows it
        weight.grad = torch.ones(4, 4)
        optimizer.step()
    assert optimizer.state[weight] and weight.detach().max().item() < 1.0


def test_missing_optional_optimizer_is_a_clear_error(monkeypatch):
    import builtins

    from acetune.config import OptimConfig, OptimizerKind
    from acetune.errors import ConfigError
    from acetune.train.optim import build_optimizer

    real_import = builtins.__import__

    def no_prodigy(name, *args, **kwargs):
        if name == "prodigyopt":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_prodigy)
    with pytest.raises(ConfigError, match="pip install 'acetune\\[prodigy\\]'"):
        build_optimizer([{"params": [torch.nn.Parameter(torch.ones(1))]}],
                        OptimConfig(optimizer=OptimizerKind.PRODIGY), torch.device("cpu"))
