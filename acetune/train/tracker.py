"""Best-checkpoint tracking and early stopping on an eval loss or a moving average of train loss."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

MA_WINDOW = 5


@dataclass
class BestTracker:
    min_delta: float
    patience: int  # evaluations without improvement before stopping (0 = never)
    start_step: int  # tracking starts after this step
    best: float = math.inf
    best_step: int = -1
    stale: int = 0
    recent: list[float] = field(default_factory=list)  # for the moving-average metric

    def smoothed(self, value: float) -> float:
        """Append a train loss and return the mean of the last five."""
        self.recent = (self.recent + [value])[-MA_WINDOW:]
        return sum(self.recent) / len(self.recent)

    def observe(self, step: int, value: float) -> tuple[bool, bool]:
        """(is a new best, should stop) for a metric value at `step`."""
        if step < self.start_step or not math.isfinite(value):
            return False, False
        if value < self.best - self.min_delta:
            self.best, self.best_step, self.stale = value, step, 0
            return True, False
        self.stale += 1
        return False, self.patience > 0 and self.stale >= self.patience

    def state(self) -> dict:
        data = asdict(self)
        data["best"] = None if math.isinf(self.best) else self.best
        return data

    @classmethod
    def from_state(cls, state: dict) -> "BestTracker":
        data = dict(state)
        data["best"] = math.inf if data["best"] is None else data["best"]
        return cls(**data)
