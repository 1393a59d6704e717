"""A training run as the page shows it, read from its `events.jsonl` (what `acetune train` writes).

`RunLog.read()` reads only the lines added since the last call, so following a long run costs
the new steps, not the whole file. The same reader serves a run this app started and one it
finds again after a restart: the file is the one source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"


@dataclass
class RunLog:
    folder: Path
    plan: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)  # StepDone records
    evals: list[dict[str, Any]] = field(default_factory=list)  # EvalDone records
    auditions: list[dict[str, Any]] = field(default_factory=list)  # Auditioned records
    saved: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    finished: dict[str, Any] | None = None
    resumed_from: str | None = None
    _offset: int = 0

    def read(self) -> bool:
        """Take in the events written since the last read; True when there were any."""
        path = self.folder / EVENTS_FILE
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                self._take(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line does not stop the view
        return bool(complete)

    def _take(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "TrainStarted":
            self.plan, self.resumed_from, self.finished = event["plan"], event.get("resumed_from"), None
        elif kind == "StepDone":
            self.steps.append(event)
        elif kind == "EvalDone":
            self.evals.append(event)
        elif kind == "Auditioned":
            self.auditions.append(event)
        elif kind == "Saved":
            self.saved.append(event)
        elif kind == "Warned":
            self.warnings.append(event["text"])
        elif kind == "Finished":
            self.finished = event

    def points(self) -> list[dict[str, Any]]:
        """Rows for the loss plot: train loss per logged step and eval loss per evaluation."""
        rows = [{"step": s["step"], "loss": s["loss"], "series": "train"} for s in self.steps]
        return rows + [{"step": e["step"], "loss": e["loss"], "series": "eval"} for e in self.evals]

    def summary(self) -> str:
        """Step, loss, learning rate, samples/s and ETA of the latest step, in one line."""
        total = self.plan.get("total_steps")
        if not self.steps:
            return "waiting for the first step" if not self.finished else self._ending()
        last = self.steps[-1]
        line = (f"step {last['step']}/{total} · loss {last['loss']:.4f} · lr {last['lr']:.2e} · "
                f"{last['samples_per_s']:.1f} samples/s")
        eta = self.eta_s()
        if eta is not None:
            line += f" · ETA {_duration(eta)}"
        return line + (f" · {self._ending()}" if self.finished else "")

    def eta_s(self) -> float | None:
        total, batch = self.plan.get("total_steps"), self.plan.get("effective_batch")
        if not self.steps or not total or not batch or self.finished:
            return None
        last = self.steps[-1]
        return (total - last["step"]) * batch / last["samples_per_s"] if last["samples_per_s"] > 0 else None

    def _ending(self) -> str:
        assert self.finished is not None
        return f"finished ({self.finished['reason']}) at step {self.finished['summary'].get('step')}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
