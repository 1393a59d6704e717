"""Progress events: frozen, JSON-serialisable records that long jobs yield and front ends render.

Library code never prints; the CLI (rich), the UI and tests subscribe to these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    def to_json(self) -> dict[str, Any]:
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        return {"event": type(self).__name__, **data}


@dataclass(frozen=True)
class Started(Event):
    job: str  # "preprocess", "train", ...
    total: int  # units of work expected (files, steps)


@dataclass(frozen=True)
class Progressed(Event):
    done: int
    total: int
    item: str  # what was just finished (a file name, a step)


@dataclass(frozen=True)
class Skipped(Event):
    path: Path
    reason: str


@dataclass(frozen=True)
class Warned(Event):
    code: str
    text: str


@dataclass(frozen=True)
class Finished(Event):
    job: str
    reason: str  # "complete", "stopped", "halted" (non-finite loss), "failed"
    summary: dict[str, Any]


# --- training ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainStarted(Event):
    plan: dict[str, Any]  # steps, effective batch, trainable parameters, precision, device, ...
    resumed_from: str | None


@dataclass(frozen=True)
class StepDone(Event):
    step: int
    epoch: int
    loss: float  # true mean loss of the step's micro-batches
    lr: float
    grad_norm: float
    samples_per_s: float
    peak_mem_gib: float


@dataclass(frozen=True)
class LayerGradNorms(Event):
    step: int
    norms: dict[str, float]  # per decoder layer


@dataclass(frozen=True)
class EvalDone(Event):
    step: int
    loss: float
    best: bool


@dataclass(frozen=True)
class Saved(Event):
    step: int
    path: Path
    kind: str  # checkpoint | best | final


@dataclass(frozen=True)
class Auditioned(Event):
    step: int
    path: Path  # the rendered audio file
    prompt: str
    seed: int
    strength: float | None  # None for the base model
