"""The ACE-Step 1.5 samplers: turbo (fixed 8-step tables, no guidance) and base/sft (shifted
linear schedule with APG/ADG guidance), reproducing the official `generate_audio` bit for bit.

The decoder runs in the model's dtype and device; the state x, the schedule and every
update stay float32 and follow the reference's rounding (see tests/fixtures/golden/README.md
§5), so a float32 model matches the golden runs exactly and a bf16 one differs only by the
decoder's own precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from acetune.errors import ConfigError
from acetune.model.acestep import AceStepModel, Condition
from acetune.model.dit import ConditionCache
from acetune.model.guidance import MomentumBuffer, adg, apg
from acetune.model.variant import KINDS

TURBO_SHIFTS = (1.0, 2.0, 3.0)
TURBO_STEPS = 8
MAX_CUSTOM_TIMESTEPS = 20
MAX_STEPS = 1000
MAX_GUIDANCE = 30.0
METHODS = ("ode", "sde")
GUIDANCE_METHODS = ("apg", "adg")


def _shifted(shift: float, tau: float) -> float:
    return shift * tau / (1 + (shift - 1) * tau)


# The turbo tables as Python floats; they are rounded to float32 when used.
_TURBO_TABLES = {s: tuple(_shifted(s, 1 - i / TURBO_STEPS) for i in range(TURBO_STEPS)) for s in TURBO_SHIFTS}
_TURBO_VALUES = tuple(sorted({t for table in _TURBO_TABLES.values() for t in table}, reverse=True))  # 20 values


def _nearest(value: float, choices: Sequence[float]) -> float:
    return min(choices, key=lambda choice: abs(choice - value))


def turbo_schedule(shift: float = 3.0, timesteps: Sequence[float] | None = None) -> torch.Tensor:
    """float32 [n] timesteps of the turbo sampler.

    Without `timesteps`: the 8-entry table for `shift` snapped to the nearest of 1, 2, 3.
    With them: trailing zeros dropped, at most 20 kept, each snapped to the nearest of the
    20 distinct table values (the distilled model was trained only on those).
    """
    if timesteps is None:
        return torch.tensor(_TURBO_TABLES[_nearest(float(shift), TURBO_SHIFTS)], dtype=torch.float32)
    values = [float(t) for t in timesteps]
    while values and values[-1] == 0:
        values.pop()
    if not values:
        raise ConfigError("custom turbo timesteps are empty (or all zero)",
                          fix="give decreasing values in (0, 1], e.g. 1.0, 0.9, 0.75, 0.5, 0.3")
    snapped = [_nearest(t, _TURBO_VALUES) for t in values[:MAX_CUSTOM_TIMESTEPS]]
    return torch.tensor(snapped, dtype=torch.float32)


def base_schedule(steps: int, shift: float = 1.0) -> torch.Tensor:
    """float32 [steps+1]: linspace(1, 0) then t <- s*t / (1 + (s-1)*t), all in float32."""
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float32)
    if shift != 1:
        t = shift * t / (1 + (shift - 1) * t)
    return t


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample: which sampler (by variant kind), schedule, guidance and update rule."""

    kind: str = "turbo"  # "turbo" | "base" | "sft" (sft uses the base sampler)
    steps: int = 8  # base/sft only (turbo: the table length)
    shift: float = 3.0
    guidance: float = 1.0  # base/sft only; > 1 runs the CFG batch
    guidance_method: str = "apg"  # "apg" | "adg"
    cfg_interval: tuple[float, float] = (0.0, 1.0)  # guide only where start <= t <= end
    method: str = "ode"  # "ode" | "sde"
    timesteps: tuple[float, ...] | None = None  # turbo custom schedule

    @classmethod
    def for_variant(cls, kind: str, **overrides) -> SamplerSettings:
        """Recommended defaults for a variant kind (turbo: shift 3, 8 steps, no guidance;
        base/sft: shift 1, 50 steps, APG guidance 7), then `overrides` (None keeps the default), validated."""
        if kind == "turbo":
            base = cls(kind="turbo", steps=TURBO_STEPS, shift=3.0, guidance=1.0)
        elif kind in ("base", "sft"):
            base = cls(kind=kind, steps=50, shift=1.0, guidance=7.0, guidance_method="apg")
        else:
            raise ConfigError(f"sampler kind: unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        settings = replace(base, **{key: value for key, value in overrides.items() if value is not None})
        settings.validate()
        return settings

    @property
    def step_count(self) -> int:
        """Decoder steps actually run (turbo: its table's length, whatever `steps` says)."""
        return len(self.schedule()) if self.kind == "turbo" else self.steps

    @property
    def uses_cfg(self) -> bool:
        return self.kind != "turbo" and self.guidance > 1

    def schedule(self) -> torch.Tensor:
        """The timesteps fed to the decoder, float32 (base/sft: steps+1 values ending at 0)."""
        if self.kind == "turbo":
            return turbo_schedule(self.shift, self.timesteps)
        return base_schedule(self.steps, self.shift)

    def validate(self) -> None:
        """Raise ConfigError naming the first impossible field."""
        def bad(field: str, problem: str, fix: str | None = None) -> ConfigError:
            return ConfigError(f"sampler {field}: {problem}", fix=fix)

        if self.kind not in KINDS:
            raise bad("kind", f"unknown kind {self.kind!r}", f"choose one of {', '.join(KINDS)}")
        if self.method not in METHODS:
            raise bad("method", f"unknown method {self.method!r}", f"choose one of {', '.join(METHODS)}")
        if self.guidance_method not in GUIDANCE_METHODS:
            raise bad("guidance_method", f"unknown guidance method {self.guidance_method!r}",
                      f"choose one of {', '.join(GUIDANCE_METHODS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise bad("steps", f"must be an integer from 1 to {MAX_STEPS}, got {self.steps!r}")
        if not self.shift > 0:
            raise bad("shift", f"must be > 0, got {self.shift!r}")
        if not 1.0 <= self.guidance <= MAX_GUIDANCE:
            raise bad("guidance", f"must be from 1 to {MAX_GUIDANCE:g} (1 = no guidance), got {self.guidance!r}")
        if len(self.cfg_interval) != 2 or not 0.0 <= self.cfg_interval[0] <= self.cfg_interval[1] <= 1.0:
            raise bad("cfg_interval", f"must be (start, end) with 0 <= start <= end <= 1, got {self.cfg_interval!r}")
        if self.kind == "turbo":
            if self.guidance > 1:
                raise bad("guidance", f"turbo has no classifier-free guidance, got {self.guidance!r}",
                          "leave guidance at 1.0 for turbo, or sample a base/sft model")
            if self.timesteps is not None:
                turbo_schedule(self.shift, self.timesteps)  # raises on an empty schedule
                if any(not 0.0 <= float(t) <= 1.0 for t in self.timesteps):
                    raise bad("timesteps", f"values must lie in [0, 1], got {self.timesteps!r}")
        elif self.timesteps is not None:
            raise bad("timesteps", f"custom timesteps are a turbo option; the {self.kind} sampler uses steps and shift",
                      "drop timesteps, or set steps/shift instead")


def initial_noise(batch: int, frames: int, channels: int,
                  seeds: int | Sequence[int | None] | None) -> torch.Tensor:
    """float32 CPU [B, T, C] standard normal x at t = 1.

    An int seeds one generator that draws the whole batch (the official `prepare_noise`);
    a list seeds one generator per item (None or < 0: unseeded). Drawn on CPU so the same
    seed gives the same audio on any device.
    """
    shape = (batch, frames, channels)
    if seeds is None or isinstance(seeds, int):
        generator = None if seeds is None else torch.Generator("cpu").manual_seed(seeds)
        return torch.randn(shape, generator=generator, dtype=torch.float32)
    seeds = list(seeds)
    if len(seeds) != batch:
        raise ConfigError(f"seeds: got {len(seeds)} seeds for a batch of {batch}", fix="give one seed per item")
    rows = []
    for seed in seeds:
        generator = None if seed is None or seed < 0 else torch.Generator("cpu").manual_seed(int(seed))
        rows.append(torch.randn((frames, channels), generator=generator, dtype=torch.float32))
    return torch.stack(rows)


@torch.no_grad()
def sample(model: AceStepModel, noise: torch.Tensor, condition: Condition, settings: SamplerSettings, *,
           generator: torch.Generator | Sequence[torch.Generator] | None = None,
           on_step: Callable[[int, int], None] | None = None,
           trace: dict[str, list[torch.Tensor]] | None = None) -> torch.Tensor:
    """Integrate from `noise` (x at t = 1) to clean latents [B, T, C] float32.

    `generator` draws the fresh noise of SDE steps: one for the whole batch, or one per item (so an
    item's SDE render does not depend on what else is in the batch). `on_step(done, total)` is called after
    each step with the number of steps finished (1..total), ready for a progress bar.
    `trace`, if given, collects per step 't', 'xt' and 'v' (no CFG) or 'v_cond', 'v_uncond',
    'v_used' and 'guidance_applied'.
    """
    settings.validate()
    decoder = _DecoderCall(model, condition, noise.shape[0], cfg=settings.uses_cfg)
    x = noise.to(device=decoder.device, dtype=torch.float32)
    host = settings.schedule()  # the float32 values; Python-side decisions read these, never the device copy
    schedule = host.to(decoder.device)
    if settings.kind == "turbo":
        return _turbo_loop(decoder, x, schedule, host, settings, generator, on_step, trace)
    return _base_loop(decoder, x, schedule, host, settings, generator, on_step, trace)


def _turbo_loop(decoder, x, schedule, host, settings, generator, on_step, trace) -> torch.Tensor:
    total = len(schedule)
    for i in range(total):
        t = schedule[i]
        v = decoder.velocity(x, t)
        _record(trace, t=t, xt=x, v=v)
        if i == total - 1:
            x = x - v * t
        elif settings.method == "sde":
            t_next = schedule[i + 1]
            x = t_next * _fresh_noise(x, generator) + (1 - t_next) * (x - v * t)
        else:
            # The reference takes this difference between the float32 values in double precision.
            dt = torch.tensor(float(host[i]) - float(host[i + 1]), dtype=torch.float32, device=x.device)
            x = x - v * dt
        if on_step is not None:
            on_step(i + 1, total)
    return x


def _base_loop(decoder, x, schedule, host, settings, generator, on_step, trace) -> torch.Tensor:
    total = len(schedule) - 1
    buffer = MomentumBuffer()  # one per call; advanced only on guided steps
    lo, hi = (torch.tensor(b, dtype=torch.float32) for b in settings.cfg_interval)
    for i in range(total):
        t, t_next = schedule[i], schedule[i + 1]
        if settings.uses_cfg:
            v_cond, v_uncond = decoder.velocity(x, t).chunk(2)
            guided = bool((lo <= host[i]) & (host[i] <= hi))  # compared in float32, as the reference does
            if not guided:
                v = v_cond
            elif settings.guidance_method == "apg":
                v = apg(v_cond, v_uncond, settings.guidance, buffer)
            else:
                v = adg(x, v_cond, v_uncond, t, settings.guidance)
            _record(trace, t=t, xt=x, v_cond=v_cond, v_uncond=v_uncond, v_used=v,
                    guidance_applied=torch.tensor(int(guided)))
        else:
            v = decoder.velocity(x, t)
            _record(trace, t=t, xt=x, v=v)
        if i == total - 1:
            x = x - v * t  # t_next is 0: the same bits as the ODE update
        elif settings.method == "sde":
            # Renoise at the unshifted linear time, as the reference does.
            level = torch.tensor(1 - (i + 1) / total, dtype=torch.float32, device=x.device)
            x = level * _fresh_noise(x, generator) + (1 - level) * (x - v * t)
        else:
            x = x - v * (t - t_next)
        if on_step is not None:
            on_step(i + 1, total)
    return x


class _DecoderCall:
    """The decoder bound to one condition: moves inputs to the model's dtype/device and
    builds the [cond; null] CFG batch once, returning float32 velocities."""

    def __init__(self, model: AceStepModel, condition: Condition, batch: int, *, cfg: bool):
        self.decoder = model.decoder
        self.dtype = model.dtype
        self.device = model.null_condition_emb.device
        self.cfg = cfg
        states = condition.encoder_hidden_states.to(self.device, self.dtype)
        mask = condition.encoder_attention_mask.to(self.device).bool()
        context = condition.context_latents.to(self.device, self.dtype)
        frame_mask = torch.ones(batch, context.shape[1], dtype=torch.bool, device=self.device)
        if cfg:
            null = model.null_condition_emb.to(self.dtype).expand_as(states)
            states = torch.cat([states, null])
            mask, context, frame_mask = (torch.cat([m, m]) for m in (mask, context, frame_mask))
        self.states, self.mask, self.context, self.frame_mask = states, mask, context, frame_mask
        self.condition_cache = ConditionCache()  # the condition side, computed at the first step

    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v(x, t) [B, T, C] (or [2B, T, C] with CFG: cond first, then null), float32."""
        x_in = torch.cat([x, x]) if self.cfg else x
        timestep = t.expand(x_in.shape[0])
        v = self.decoder(x_in.to(self.dtype), timestep, timestep, self.states, self.context,
                         attention_mask=self.frame_mask, encoder_attention_mask=self.mask,
                         condition_cache=self.condition_cache)
        return v.float()


def _fresh_noise(x: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
    if generator is None or isinstance(generator, torch.Generator):
        device = generator.device if generator is not None else x.device
        return torch.randn(x.shape, generator=generator, dtype=torch.float32, device=device).to(x.device)
    if len(generator) != x.shape[0]:
        raise ConfigError(f"got {len(generator)} SDE generators for a batch of {x.shape[0]}",
                          fix="give one generator per item, or one for the batch")
    return torch.stack([torch.randn(x.shape[1:], generator=g, dtype=torch.float32, device=g.device)
                        for g in generator]).to(x.device)


def _record(trace: dict[str, list[torch.Tensor]] | None, **values: torch.Tensor) -> None:
    if trace is not None:
        for key, value in values.items():
            trace.setdefault(key, []).append(value.detach().clone())
