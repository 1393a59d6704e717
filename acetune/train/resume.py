"""What a checkpoint must hold to continue a run exactly, and the check that a resume is compatible.

A run stopped at step k and resumed gives bit-identical losses and weights to an uninterrupted
run on the CPU: the adapter's raw weights, optimizer and scheduler states, every RNG (Python,
NumPy, torch, CUDA, and the trainer's own generator), the epoch plan's position and coverage
counts, the EMA shadow and the best-tracker are all restored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from acetune.config import config_diff, config_from_dict
from acetune.errors import ResumeError
from acetune.train.batching import Coverage
from acetune.train.checkpoint import read_checkpoint
from acetune.train.ema import EMA
from acetune.train.sharding import load_optimizer_state, load_trainable_state, optimizer_state, trainable_state
from acetune.train.state import capture_rng, flatten, restore_rng, unflatten
from acetune.train.tracker import BestTracker

STATE_VERSION = 1
# Fields that may change between a run and its resume without changing what is computed so far.
RESUMABLE_CHANGES = ("save.", "log.", "audition.", "loop.epochs", "loop.max_steps", "loop.eval_every", "loop.early_stop_patience",
                     "data.num_workers", "loop.device", "loop.fsdp")


@dataclass
class Progress:
    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    coverage_at_epoch_start: dict = field(default_factory=lambda: Coverage(32).state())
    last_loss: float = float("nan")

    def finish_epoch(self, coverage: Coverage) -> None:
        self.epoch += 1
        self.batches_done = 0
        self.coverage_at_epoch_start = coverage.state()


def initial_progress(bins: int) -> Progress:
    return Progress(coverage_at_epoch_start=Coverage(bins).state())


def progress_state(session, progress: Progress, tracker: BestTracker, ema: EMA | None, generator: torch.Generator,
                   config: dict, adaptive=None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(state.json tree, state.safetensors tensors) for the current moment.

    With FSDP every rank must call it (the weights, optimizer and EMA states are gathered); only
    rank 0's result is complete.
    """
    tensors: dict[str, torch.Tensor] = {}
    heavy = {
        "adapter": trainable_state(session),
        "optimizer": optimizer_state(session),
        "rng": capture_rng(),
        "generator": generator.get_state(),
        "ema": None if ema is None else ema.state(),
        "adaptive": None if adaptive is None else adaptive.state(),
    }
    state = {
        "state_version": STATE_VERSION,
        "step": progress.step,
        "progress": {**asdict(progress), "last_loss": None if progress.last_loss != progress.last_loss
                     else progress.last_loss},
        "tracker": tracker.state(),
        "scheduler": {k: v for k, v in session.scheduler.state_dict().items() if k != "lr_lambdas"},
        "adapter_kind": session.config.adapter.kind.value,
        "cache_fingerprint": session.cache_fingerprint.to_json(),
        "samples": cache_samples(session.reader),
        "config": config,
        "tensors": flatten(heavy, tensors),
    }
    return state, tensors


def cache_samples(reader) -> dict[str, str]:
    """What the run's plan was made from: each sample's id and the hash of what it was encoded from."""
    return {entry.id: entry.input_hash for entry in reader.entries}


def check_same_samples(saved: dict[str, str] | None, reader, folder: Path) -> None:
    """A cache whose songs changed since the checkpoint cannot continue its plan (epoch order, crops)."""
    if saved is None:  # checkpoints written before acetune recorded the samples
        return
    now = cache_samples(reader)
    gone = sorted(set(saved) - set(now))
    new = sorted(set(now) - set(saved))
    changed = sorted(k for k in set(saved) & set(now) if saved[k] != now[k])
    if gone or new or changed:
        parts = [f"{len(items)} {what} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
                 for what, items in (("removed", gone), ("added", new), ("re-encoded", changed)) if items]
        raise ResumeError(f"the cache changed since this checkpoint: {'; '.join(parts)}", path=folder,
                          fix="resume on the cache as it was (run `acetune preprocess` on the same songs), or start a "
                              "new run with another --out on the changed cache")


def check_resumable(saved_config: dict, config, folder: Path) -> None:
    """Refuse a resume whose config differs in anything that shaped the run so far."""
    saved = config_from_dict(saved_config, source=str(folder / "state.json"))
    lines = [line for line in config_diff(saved, config) if not line.startswith(RESUMABLE_CHANGES)]
    if lines:
        raise ResumeError("the checkpoint was made with other settings (old -> new):\n  " + "\n  ".join(lines),
                          path=folder, fix="drop the options that change them (a resume keeps the run's own settings "
                                           "from its config.resolved.toml), or start a new run with another --out")


def load_progress(folder: Path, session, generator: torch.Generator, ema: EMA | None,
                  adaptive=None) -> tuple[Progress, BestTracker]:
    state, tensors = read_checkpoint(folder)
    if state.get("state_version") != STATE_VERSION:
        raise ResumeError(f"checkpoint state version {state.get('state_version')} is not supported", path=folder)
    if state["adapter_kind"] != session.config.adapter.kind.value:
        raise ResumeError(f"the checkpoint trains a {state['adapter_kind']} adapter, this config a "
                          f"{session.config.adapter.kind.value}", path=folder,
                          fix="use the same --adapter-kind as the run you resume")
    check_resumable(state["config"], session.config, Path(folder))
    check_same_samples(state.get("samples"), session.reader, Path(folder))
    heavy = unflatten(state["tensors"], tensors)
    load_trainable_state(session, heavy["adapter"])
    load_optimizer_state(session, heavy["optimizer"])
    session.scheduler.load_state_dict({**session.scheduler.state_dict(), **state["scheduler"]})
    restore_rng(heavy["rng"])
    generator.set_state(heavy["generator"])
    if ema is not None and heavy["ema"] is not None:
        ema.load_state(heavy["ema"])
    if adaptive is not None and heavy.get("adaptive") is not None:
        adaptive.load_state(heavy["adaptive"])
    saved = state["progress"]
    progress = Progress(step=saved["step"], epoch=saved["epoch"], batches_done=saved["batches_done"],
                        coverage_at_epoch_start=saved["coverage_at_epoch_start"],
                        last_loss=float("nan") if saved["last_loss"] is None else saved["last_loss"])
    return progress, BestTracker.from_state(state["tracker"])
