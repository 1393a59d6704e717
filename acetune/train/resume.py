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

from acetune.config import config_diff, config_from_dict, config_to_dict
from acetune.errors import ResumeError
from acetune.train.batching import Coverage
from acetune.train.checkpoint import read_checkpoint
from acetune.train.ema import EMA
from acetune.train.objective import Objective
from acetune.train.session import Session
from acetune.train.state import capture_rng, flatten, restore_rng, unflatten
from acetune.train.tracker import BestTracker

STATE_VERSION = 1
# Fields that may change between a run and its resume without changing what is computed so far.
RESUMABLE_CHANGES = ("save.", "log.", "audition.", "loop.epochs", "loop.max_steps", "loop.eval_every", "loop.early_stop_patience",
                     "loop.device", "loop.fsdp")


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


@dataclass(repr=False)  # a repr of the whole session says nothing useful
class RunState:
    """Everything a resume restores, one object: the trainable weights and optimizer (through the
    strategy, gathered when sharded), the scheduler, every RNG, the plan's position, the tracker, the
    EMA and the objective's adaptive bins. The loop mutates it; checkpoints hold its `state_dict()`."""

    session: Session
    objective: Objective
    generator: torch.Generator
    progress: Progress
    tracker: BestTracker
    ema: EMA | None

    @classmethod
    def fresh(cls, session: Session, objective: Objective) -> "RunState":
        config = session.config
        return cls(session, objective, torch.Generator().manual_seed(config.loop.seed),
                   initial_progress(config.data.coverage_bins),
                   BestTracker(config.loop.min_delta, config.loop.early_stop_patience, config.loop.best_after),
                   session.strategy.make_ema(config.loop.ema_decay))

    def state_dict(self) -> dict[str, Any]:
        """The light (JSON) and heavy (tensor) parts; with FSDP every rank must call it (rank 0's is complete)."""
        strategy = self.session.strategy
        heavy = {
            "adapter": strategy.trainable_state(),
            "optimizer": strategy.optimizer_state(self.session.optimizer),
            "rng": capture_rng(),
            "generator": self.generator.get_state(),
            "ema": None if self.ema is None else self.ema.state(),
            "adaptive": self.objective.state_dict(),
        }
        progress = self.progress
        return {"step": progress.step,
                "progress": {**asdict(progress), "last_loss": None if progress.last_loss != progress.last_loss
                             else progress.last_loss},
                "tracker": self.tracker.state(),
                "scheduler": {k: v for k, v in self.session.scheduler.state_dict().items() if k != "lr_lambdas"},
                "heavy": heavy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        session, heavy = self.session, state["heavy"]
        session.strategy.load_trainable_state(heavy["adapter"])
        session.strategy.load_optimizer_state(session.optimizer, heavy["optimizer"])
        session.scheduler.load_state_dict({**session.scheduler.state_dict(), **state["scheduler"]})
        restore_rng(heavy["rng"])
        self.generator.set_state(heavy["generator"])
        if self.ema is not None and heavy["ema"] is not None:
            self.ema.load_state(heavy["ema"])
        self.objective.load_state_dict(heavy.get("adaptive"))
        saved = state["progress"]
        self.progress = Progress(step=saved["step"], epoch=saved["epoch"], batches_done=saved["batches_done"],
                                 coverage_at_epoch_start=saved["coverage_at_epoch_start"],
                                 last_loss=float("nan") if saved["last_loss"] is None else saved["last_loss"])
        self.tracker = BestTracker.from_state(state["tracker"])


def checkpoint_state(state: RunState) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(state.json tree, state.safetensors tensors) of the moment (every rank calls it when sharded)."""
    session, tensors = state.session, {}
    parts = state.state_dict()
    return {
        "state_version": STATE_VERSION,
        "step": parts["step"],
        "progress": parts["progress"],
        "tracker": parts["tracker"],
        "scheduler": parts["scheduler"],
        "adapter_kind": session.config.adapter.kind.value,
        "cache_fingerprint": session.cache_fingerprint.to_json(),
        "samples": cache_samples(session.reader),
        "config": config_to_dict(session.config),
        "tensors": flatten(parts["heavy"], tensors),
    }, tensors


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


def restore(folder: Path, state: RunState) -> None:
    """Load a checkpoint into `state` after checking it belongs to this run."""
    saved, tensors = read_checkpoint(folder)
    config = state.session.config
    if saved.get("state_version") != STATE_VERSION:
        raise ResumeError(f"checkpoint state version {saved.get('state_version')} is not supported", path=folder)
    if saved["adapter_kind"] != config.adapter.kind.value:
        raise ResumeError(f"the checkpoint trains a {saved['adapter_kind']} adapter, this config a "
                          f"{config.adapter.kind.value}", path=folder,
                          fix="use the same --adapter-kind as the run you resume")
    check_resumable(saved["config"], config, Path(folder))
    check_same_samples(saved.get("samples"), state.session.reader, Path(folder))
    state.load_state_dict({**saved, "heavy": unflatten(saved["tensors"], tensors)})
