"""The samplers against the 7 official runs in the sampler golden, plus settings, schedules and noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from golden_tolerances import SAMPLER_OUT_ATOL as OUT_ATOL, SAMPLER_STEP_ATOL as STEP_ATOL

from acetune.errors import ConfigError
from acetune.model import Condition
from acetune.model.sampling import (
    SamplerSettings, base_schedule, initial_noise, sample, turbo_schedule,
)

SAMPLER_GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden" / "sampler_tiny_seed0.safetensors"
with safe_open(str(SAMPLER_GOLDEN), "pt") as _handle:
    RUNS: dict = json.loads(_handle.metadata()["runs_json"])


def settings_for(run: dict) -> SamplerSettings:
    """SamplerSettings equivalent to a run's official `generate_audio` kwargs."""
    kw = run["kwargs"]
    if run["variant"] == "turbo":
        return SamplerSettings(kind="turbo", shift=kw["shift"], method=kw["infer_method"])
    return SamplerSettings(kind=run["variant"], steps=kw["infer_steps"], shift=kw["shift"],
                           guidance=kw["diffusion_guidance_sale"], guidance_method="adg" if kw["use_adg"] else "apg",
                           cfg_interval=(kw["cfg_interval_start"], kw["cfg_interval_end"]),
                           method=kw["infer_method"])


@pytest.fixture()
def condition(sampler_golden) -> Condition:
    s = sampler_golden
    return Condition(s["cond.encoder_hidden_states"], s["cond.encoder_attention_mask"].bool(),
                     s["cond.context_latents"])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


# --- golden runs ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RUNS))
def test_golden_run(name, golden_model, sampler_golden, condition):
    s, run = sampler_golden, RUNS[name]
    trace: dict[str, list[torch.Tensor]] = {}
    steps: list[tuple[int, int]] = []
    out = sample(golden_model, s[f"{name}.noise"], condition, settings_for(run), trace=trace,
                 on_step=lambda i, n: steps.append((i, n)))
    assert torch.equal(torch.stack(trace["t"]), s[f"{name}.t"])
    assert torch.stack(trace["t"]).tolist() == pytest.approx(run["t_used"], abs=1e-7)
    assert steps == [(i, 8) for i in range(1, 9)]
    keys = ["v"] if f"{name}.v" in s else ["v_cond", "v_uncond", "v_used"]
    for key in ["xt", *keys]:
        assert max_diff(torch.stack(trace[key]), s[f"{name}.{key}"]) <= STEP_ATOL, key
    if "v_used" in keys:
        assert torch.equal(torch.stack(trace["guidance_applied"]), s[f"{name}.guidance_applied"])
    assert out.dtype == torch.float32
    assert max_diff(out, s[f"{name}.out"]) <= OUT_ATOL


class _ReplayDecoder(nn.Module):
    """Returns the golden velocities step by step, so the sampler's own arithmetic is tested alone."""

    def __init__(self, outputs: list[torch.Tensor]):
        super().__init__()
        self.outputs, self.calls = outputs, 0

    def forward(self, hidden_states, timestep, timestep_r, *args, **kwargs):
        out = self.outputs[self.calls]
        self.calls += 1
        assert hidden_states.shape == out.shape and torch.equal(timestep, timestep_r)
        return out


class _ReplayModel(nn.Module):
    def __init__(self, outputs: list[torch.Tensor], null: torch.Tensor):
        super().__init__()
        self.decoder = _ReplayDecoder(outputs)
        self.null_condition_emb = nn.Parameter(null.clone())

    @property
    def dtype(self) -> torch.dtype:
        return self.null_condition_emb.dtype


@pytest.mark.parametrize("name", sorted(RUNS))
def test_update_and_guidance_math_is_bit_exact(name, sampler_golden, condition):
    """Fed the official decoder outputs, every x_t, guided velocity and the result match bit for bit."""
    s = sampler_golden
    if f"{name}.v" in s:
        outputs = list(s[f"{name}.v"])
    else:
        outputs = [torch.cat([c, u]) for c, u in zip(s[f"{name}.v_cond"], s[f"{name}.v_uncond"])]
    model = _ReplayModel(outputs, s["w.null_condition_emb"])
    trace: dict[str, list[torch.Tensor]] = {}
    out = sample(model, s[f"{name}.noise"], condition, settings_for(RUNS[name]), trace=trace)
    assert torch.equal(torch.stack(trace["xt"]), s[f"{name}.xt"])
    if f"{name}.v_used" in s:
        assert torch.equal(torch.stack(trace["v_used"]), s[f"{name}.v_used"])
    assert torch.equal(out, s[f"{name}.out"])


def test_base_without_guidance_equals_turbo_shift3(sampler_golden):
    assert torch.equal(sampler_golden["base_noguidance_shift3.out"], sampler_golden["turbo_shift3.out"])
    assert torch.equal(base_schedule(8, 3.0)[:-1], turbo_schedule(3.0))


# --- noise ------------------------------------------------------------------------------
def test_initial_noise_matches_golden_seed(sampler_golden):
    noise = initial_noise(2, 40, 64, 1234)
    assert noise.dtype == torch.float32 and noise.device.type == "cpu"
    assert torch.equal(noise, sampler_golden["turbo_shift3.noise"])


def test_list_seeds_are_per_item_and_reproducible():
    a = initial_noise(3, 10, 4, [7, 8, 7])
    assert torch.equal(a[0], a[2]) and not torch.equal(a[0], a[1])
    assert torch.equal(a, initial_noise(3, 10, 4, [7, 8, 7]))
    assert torch.equal(a[0], torch.randn(10, 4, generator=torch.Generator().manual_seed(7)))
    unseeded = initial_noise(2, 10, 4, [None, -1])
    assert unseeded.shape == (2, 10, 4) and not torch.equal(unseeded[0], unseeded[1])
    with pytest.raises(ConfigError, match="seeds"):
        initial_noise(2, 10, 4, [1])


# --- schedules ----------------------------------------------------------------------------
def test_turbo_shift_snaps_to_nearest_table():
    assert torch.equal(turbo_schedule(2.4), turbo_schedule(2.0))
    assert torch.equal(turbo_schedule(0.3), turbo_schedule(1.0))
    assert torch.equal(turbo_schedule(7.0), turbo_schedule(3.0))
    two = turbo_schedule(2.0)
    assert two.dtype == torch.float32 and len(two) == 8
    assert two.tolist() == pytest.approx([1, 14 / 15, 6 / 7, 10 / 13, 2 / 3, 6 / 11, 0.4, 2 / 9], abs=1e-7)


def test_custom_turbo_timesteps_snap_and_truncate():
    t = turbo_schedule(3.0, [0.97, 0.82, 0.61, 0.31, 0.0, 0.0])
    assert t.tolist() == pytest.approx([0.954545, 0.833333, 0.625, 0.3], abs=1e-6)
    assert len(turbo_schedule(3.0, [1.0] * 25)) == 20
    settings = SamplerSettings(timesteps=(1.0, 0.5, 0.26))
    assert settings.schedule().tolist() == [1.0, 0.5, 0.25]
    with pytest.raises(ConfigError, match="empty"):
        turbo_schedule(3.0, [0.0, 0.0])


def test_base_schedule_shift():
    assert torch.equal(base_schedule(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    shifted = base_schedule(4, 3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0 and shifted[2].item() == pytest.approx(0.75)


# --- SDE --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["turbo", "base"])
def test_sde_is_deterministic_given_a_generator_and_differs_from_ode(kind, golden_model, sampler_golden,
                                                                     condition):
    noise = sampler_golden["turbo_shift3.noise"]
    extra = {"steps": 4, "guidance": 3.0} if kind == "base" else {}
    sde = SamplerSettings.for_variant(kind, method="sde", **extra)
    ode = SamplerSettings.for_variant(kind, method="ode", **extra)
    first = sample(golden_model, noise, condition, sde, generator=torch.Generator().manual_seed(5))
    again = sample(golden_model, noise, condition, sde, generator=torch.Generator().manual_seed(5))
    other = sample(golden_model, noise, condition, sde, generator=torch.Generator().manual_seed(6))
    plain = sample(golden_model, noise, condition, ode)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert max_diff(first, plain) > 1e-3


# --- settings -------------------------------------------------------------------------------
def test_for_variant_defaults():
    turbo = SamplerSettings.for_variant("turbo")
    assert (turbo.shift, turbo.steps, turbo.guidance) == (3.0, 8, 1.0)
    base = SamplerSettings.for_variant("sft", steps=30)
    assert (base.kind, base.shift, base.steps, base.guidance, base.guidance_method) == ("sft", 1.0, 30, 7.0, "apg")
    assert len(base.schedule()) == 31


@pytest.mark.parametrize(("fields", "named"), [
    ({"kind": "xl"}, "kind"),
    ({"method": "heun"}, "method"),
    ({"kind": "base", "guidance_method": "cfg"}, "guidance_method"),
    ({"steps": 0}, "steps"),
    ({"steps": 1001}, "steps"),
    ({"shift": 0.0}, "shift"),
    ({"kind": "base", "guidance": 0.5}, "guidance"),
    ({"kind": "base", "guidance": 31.0}, "guidance"),
    ({"kind": "base", "cfg_interval": (0.7, 0.4)}, "cfg_interval"),
    ({"kind": "base", "cfg_interval": (-0.1, 1.0)}, "cfg_interval"),
    ({"kind": "base", "timesteps": (1.0, 0.5)}, "timesteps"),
    ({"timesteps": (1.0, 1.5)}, "timesteps"),
])
def test_validation_names_the_bad_field(fields, named):
    with pytest.raises(ConfigError, match=rf"sampler {named}:"):
        SamplerSettings(**fields).validate()


def test_turbo_rejects_guidance_and_says_why():
    with pytest.raises(ConfigError, match="turbo has no classifier-free guidance"):
        SamplerSettings.for_variant("turbo", guidance=7.0)
    with pytest.raises(ConfigError, match="kind"):
        SamplerSettings.for_variant("medium")


def test_a_render_computes_the_condition_side_once_and_renders_the_same(golden_model, sampler_golden, condition,
                                                                        monkeypatch):
    """Cross-attention keys/values are computed at the first step only, and the result is what fresh
    keys/values at every step give, bit for bit."""
    from acetune.model.layers import Attention

    name = "turbo_shift3"
    noise, settings = sampler_golden[f"{name}.noise"], settings_for(RUNS[name])
    calls: list[int] = []
    plain = Attention.keys_values

    def counted(self, source):
        calls.append(1)
        return plain(self, source)

    monkeypatch.setattr(Attention, "keys_values", counted)
    cached = sample(golden_model, noise, condition, settings)
    assert len(calls) == len(golden_model.decoder.layers)  # once per layer for all 8 steps
    calls.clear()
    monkeypatch.setattr("acetune.model.sampling.ConditionCache", lambda: None)  # no cache: fresh every step
    fresh = sample(golden_model, noise, condition, settings)
    assert len(calls) == 8 * len(golden_model.decoder.layers)
    assert torch.equal(cached, fresh)
