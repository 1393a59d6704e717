"""`validate(config)`: values that type-check but cannot work, each reported with its key and a fix.

Rules are one table (key, check, what the value must be, how to fix it); every problem found is
reported at once. Some combinations are deliberately left alone: Prodigy with a decaying
scheduler is not an error, because the trainer forces a constant schedule and warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from acetune.config.schema import AdapterKind, RunConfig, Task
from acetune.errors import ConfigError, echoed

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
BIAS_MODES = ("none", "all", "lora_only")
WINDOW_CONVENTIONS = ("eager", "flash")
AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg", "opus", "m4a", "aac")
# Seeds reach torch.Generator.manual_seed (which takes -2**63 .. 2**64-1), Python's and numpy's generators;
# 0 .. 2**63-1 works in all of them, leaves room for generate's seed + take, and is what a seed means to users.
SEED_MAX = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    key: str  # dotted path into RunConfig
    ok: Callable[[Any], bool]
    must: str  # "must be >= 1"
    fix: str


def _each(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda values: all(check(v) for v in values)


def is_seed(value: int) -> bool:
    return 0 <= value <= SEED_MAX


SEED_RANGE = f"must be in [0, {SEED_MAX}]"


def check_seed(value: int, name: str) -> None:
    """A seed given on its own (a command-line option) checked like the config's seeds."""
    if not is_seed(value):
        raise ConfigError(f"{name} {echoed(value)} {SEED_RANGE}", fix=f"use e.g. {name} 42")


RULES: tuple[Rule, ...] = (
    Rule("data.crop_frames", lambda v: v >= 0, "must be >= 0", "use 0 for whole songs or e.g. 1500 (60 s)"),
    Rule("data.coverage_bins", lambda v: v >= 1, "must be >= 1", "use e.g. 32"),
    Rule("data.batch_size", lambda v: v >= 1, "must be >= 1", "use 1 and raise optim.grad_accum instead"),
    Rule("data.val_split", lambda v: 0 <= v <= 0.5, "must be in [0, 0.5]", "use 0 (no hold-out) or e.g. 0.1"),
    Rule("data.repeats", lambda v: v >= 1, "must be >= 1", "use 1"),
    Rule("adapter.rank", lambda v: v >= 1, "must be >= 1", "use e.g. 16, 32 or 64"),
    Rule("adapter.alpha", lambda v: v > 0, "must be > 0", "use e.g. 2 x rank"),
    Rule("adapter.dropout", lambda v: 0 <= v < 1, "must be in [0, 1)", "use e.g. 0.1, or 0 for none"),
    Rule("adapter.bias", lambda v: v in BIAS_MODES, f"must be one of {', '.join(BIAS_MODES)}", "use none"),
    Rule("adapter.projections", _each(lambda v: v in PROJECTIONS),
         f"may only name {', '.join(PROJECTIONS)}", "list a subset of q_proj, k_proj, v_proj, o_proj"),
    Rule("objective.cfg_ratio", lambda v: 0 <= v <= 1, "must be in [0, 1]", "use e.g. 0.15"),
    Rule("objective.snr_gamma", lambda v: v > 0, "must be > 0", "use e.g. 5.0"),
    Rule("objective.adaptive_timestep_ratio", lambda v: 0 <= v <= 1, "must be in [0, 1]", "use 0 (off)"),
    *(Rule(f"objective.task_mix.{task}", lambda v: v >= 0, "must be >= 0", "use 0 (not trained) or a positive weight")
      for task in ("text2music", "repaint", "cover", "extract", "complete")),
    Rule("optim.lr", lambda v: v > 0, "must be > 0", "use e.g. 1e-4 (Prodigy: 1.0)"),
    Rule("optim.weight_decay", lambda v: v >= 0, "must be >= 0", "use e.g. 0.01, or 0 for none"),
    Rule("optim.betas", _each(lambda v: 0 <= v < 1), "must each be in [0, 1)", "use [0.9, 0.999]"),
    Rule("optim.eps", lambda v: v > 0, "must be > 0", "use 1e-8"),
    Rule("optim.max_grad_norm", lambda v: v >= 0, "must be >= 0", "use 1.0, or 0 to turn clipping off"),
    Rule("optim.grad_accum", lambda v: v >= 1, "must be >= 1", "use 1 for no accumulation"),
    Rule("schedule.warmup_steps", lambda v: v >= 0, "must be >= 0", "use e.g. 100, or 0 for none"),
    Rule("schedule.warmup_start_factor", lambda v: 0 < v <= 1, "must be in (0, 1]", "use e.g. 0.1"),
    Rule("schedule.min_lr_ratio", lambda v: 0 <= v <= 1, "must be in [0, 1]", "use e.g. 0.01"),
    Rule("schedule.restarts", lambda v: v >= 1, "must be >= 1", "use e.g. 4"),
    Rule("loop.epochs", lambda v: v >= 1, "must be >= 1", "use e.g. 100 (loop.max_steps can stop earlier)"),
    Rule("loop.max_steps", lambda v: v >= 0, "must be >= 0", "use 0 for no limit"),
    Rule("loop.gradient_checkpointing", lambda v: 0 <= v <= 1, "must be in [0, 1]",
         "use 0 (off), 1 (every layer) or a share in between"),
    Rule("loop.window_convention", lambda v: v in WINDOW_CONVENTIONS,
         f"must be one of {', '.join(WINDOW_CONVENTIONS)}", "use eager (the reference convention)"),
    Rule("loop.eval_every", lambda v: v >= 0, "must be >= 0", "use 0 to evaluate at the end of each epoch"),
    Rule("loop.eval_timesteps", lambda v: len(v) > 0, "must not be empty", "use [0.1, 0.3, 0.5, 0.7, 0.9]"),
    Rule("loop.eval_timesteps", _each(lambda v: 0 < v < 1), "must each be in (0, 1)", "use [0.1, 0.3, 0.5, 0.7, 0.9]"),
    Rule("loop.best_after", lambda v: v >= 0, "must be >= 0", "use 0 to track the best from the start"),
    Rule("loop.min_delta", lambda v: v >= 0, "must be >= 0", "use e.g. 0.001"),
    Rule("loop.early_stop_patience", lambda v: v >= 0, "must be >= 0", "use 0 to never stop early"),
    Rule("loop.ema_decay", lambda v: 0 <= v < 1, "must be in [0, 1)", "use e.g. 0.9999, or 0 for off"),
    Rule("loop.seed", is_seed, SEED_RANGE, "use e.g. 42"),
    Rule("loop.eval_seed", is_seed, SEED_RANGE, "use e.g. 1234"),
    Rule("loop.nan_patience", lambda v: v >= 1, "must be >= 1", "use 1 (halt at the first non-finite loss)"),
    Rule("save.save_every", lambda v: v >= 0, "must be >= 0", "use e.g. 500, or 0 to save only at the end"),
    Rule("save.keep_last", lambda v: v >= 1, "must be >= 1", "use e.g. 3"),
    Rule("log.log_every", lambda v: v >= 1, "must be >= 1", "use e.g. 10"),
    Rule("log.heavy_every", lambda v: v >= 0, "must be >= 0", "use 0 (off) or e.g. 100"),
    Rule("audition.every_steps", lambda v: v >= 0, "must be >= 0", "use 0 (off) or e.g. 500"),
    Rule("audition.every_epochs", lambda v: v >= 0, "must be >= 0", "use 0 (off) or e.g. 10"),
    Rule("audition.seeds", lambda v: len(v) > 0, "must not be empty", "use [42]"),
    Rule("audition.seeds", _each(is_seed), SEED_RANGE.replace("must be", "must each be"), "use e.g. [42, 7]"),
    Rule("audition.duration_s", lambda v: 1 <= v <= 600, "must be in [1, 600] seconds", "use e.g. 10 or 30"),
    Rule("audition.bpm", lambda v: 0 <= v <= 400, "must be in [0, 400]", "use 0 for N/A or e.g. 120"),
    Rule("audition.strengths", lambda v: len(v) > 0, "must not be empty", "use [1.0] or e.g. [0.5, 1.0]"),
    Rule("audition.strengths", _each(lambda v: -2 <= v <= 2), "must each be in [-2, 2]", "use e.g. [0.5, 1.0]"),
    Rule("audition.steps", lambda v: 0 <= v <= 1000, "must be in [0, 1000]", "use 0 for the variant's default"),
    Rule("audition.shift", lambda v: v >= 0, "must be >= 0", "use 0 for the variant's default"),
    Rule("audition.guidance", lambda v: 0 <= v <= 30, "must be in [0, 30]", "use 0 for the variant's default"),
    Rule("audition.format", lambda v: v in AUDIO_FORMATS, f"must be one of {', '.join(AUDIO_FORMATS)}", "use wav"),
    Rule("preprocess.max_duration_s", lambda v: v >= 0, "must be >= 0", "use 0 for whole songs or e.g. 240"),
    Rule("preprocess.seed", is_seed, SEED_RANGE, "use e.g. 0"),
    Rule("preprocess.chunk_s", lambda v: v > 0, "must be > 0", "use e.g. 30"),
    Rule("preprocess.overlap_s", lambda v: v >= 0, "must be >= 0", "use e.g. 2"),
    Rule("preprocess.shard_max_mb", lambda v: v >= 1, "must be >= 1", "use e.g. 256"),
    Rule("preprocess.flush_every", lambda v: v >= 1, "must be >= 1", "use e.g. 32"),
)


def validate(config: RunConfig) -> None:
    """Raise one `ConfigError` listing every impossible value (key, value, what it must be, the fix)."""
    problems = [(rule.key, _get(config, rule.key), rule.must, rule.fix)
                for rule in RULES if not rule.ok(_get(config, rule.key))]
    adapter = config.adapter
    if adapter.kind is AdapterKind.FULL and not adapter.allow_full:
        problems.append(("adapter.kind", "full", "needs adapter.allow_full = true (a full decoder fine-tune)",
                         "set adapter.allow_full = true, or use lora"))
    if adapter.kind is not AdapterKind.FULL and not adapter.projections and not adapter.target_mlp:
        problems.append(("adapter.projections", (), "is empty and adapter.target_mlp is false: nothing to adapt",
                         "list projections such as q_proj, v_proj, or set adapter.target_mlp = true"))
    objective = config.objective
    if objective.task is Task.MIXED and not any(vars(objective.task_mix).values()):
        problems.append(("objective.task_mix", "all 0", "gives a mixed run no task to train",
                         "give a task a positive weight, e.g. --set objective.task_mix.repaint=1"))
    audition = config.audition
    if (audition.every_steps or audition.every_epochs) and not audition.prompts:
        problems.append(("audition.prompts", (), "is empty but auditions are scheduled",
                         "list captions, e.g. prompts = [\"warm lo-fi piano\"], or set every_steps = 0"))
    edits = [task for task in audition.tasks if task in (Task.REPAINT, Task.COVER)]
    if edits and not audition.source:
        problems.append(("audition.source", "", f"is empty but audition.tasks has {edits[0].value}",
                         "set audition.source to a song file, or drop repaint and cover from audition.tasks"))
    if any(task not in (Task.TEXT2MUSIC, Task.REPAINT, Task.COVER) for task in audition.tasks):
        problems.append(("audition.tasks", [t.value for t in audition.tasks], "may only list text2music, repaint "
                         "and cover", "drop the other tasks"))
    if not problems:
        return
    if len(problems) == 1:
        key, value, must, fix = problems[0]
        raise ConfigError(f"{key} = {_show(value)} {must}", fix=fix)
    lines = "\n".join(f"  {key} = {_show(value)} {must} (fix: {fix})" for key, value, must, fix in problems)
    raise ConfigError(f"{len(problems)} impossible values:\n{lines}", fix="change the values listed above")


def _get(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if hasattr(value, "value"):  # Enum
        return str(value.value)
    return echoed(value)
