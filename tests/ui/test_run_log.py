"""Following a run through its events.jsonl: incremental reads, torn lines, the plot's points, the summary line."""

from __future__ import annotations

import json
from pathlib import Path

from acetune.events import Auditioned, EvalDone, Finished, StepDone, TrainStarted
from acetune.ui.run_log import RunLog


def write(folder: Path, *events, tail: str = "") -> None:
    with open(folder / "events.jsonl", "a", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event.to_json()) + "\n")
        handle.write(tail)


def step(n: int, loss: float) -> StepDone:
    return StepDone(step=n, epoch=0, loss=loss, lr=1e-4, grad_norm=1.0, samples_per_s=2.0, peak_mem_gib=0.1)


def test_the_log_is_read_incrementally_and_a_torn_line_waits(tmp_path):
    log = RunLog(tmp_path)
    assert not log.read()  # no file yet
    write(tmp_path, TrainStarted({"total_steps": 10, "effective_batch": 4}, None), step(1, 2.0),
          tail='{"event": "StepDone", "st')
    assert log.read() and [s["step"] for s in log.steps] == [1]
    with open(tmp_path / "events.jsonl", "a") as handle:  # the line is finished
        handle.write('ep": 2, "epoch": 0, "loss": 1.5, "lr": 1e-4, "grad_norm": 1, "samples_per_s": 2, '
                     '"peak_mem_gib": 0.1}\n')
    write(tmp_path, EvalDone(step=2, loss=1.7, best=True),
          Auditioned(step=2, path=tmp_path / "a.wav", prompt="p", seed=42, strength=1.0))
    assert log.read() and [s["step"] for s in log.steps] == [1, 2]
    assert log.points() == [{"step": 1, "loss": 2.0, "series": "train"}, {"step": 2, "loss": 1.5, "series": "train"},
                            {"step": 2, "loss": 1.7, "series": "eval"}]
    assert log.auditions[0]["path"] == str(tmp_path / "a.wav") and log.auditions[0]["strength"] == 1.0
    assert log.summary() == "step 2/10 · loss 1.5000 · lr 1.00e-04 · 2.0 samples/s · ETA 16 s"  # 8 steps x 4 / 2
    assert not log.read()  # nothing new


def test_a_finished_run_says_how_it_ended(tmp_path):
    write(tmp_path, TrainStarted({"total_steps": 5, "effective_batch": 1}, None), step(3, 1.0),
          Finished(job="train", reason="stopped", summary={"step": 3}))
    log = RunLog(tmp_path)
    log.read()
    assert log.summary().endswith("finished (stopped) at step 3") and log.eta_s() is None
