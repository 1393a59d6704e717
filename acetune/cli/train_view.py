"""A training run on the terminal and in its run folder: a live progress bar, events.jsonl and TensorBoard.

Each event is written to every sink and rendered the moment the loop yields it, so a run that is
killed leaves its log up to the kill, and a long run shows its progress step by step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from acetune.cli import exit_codes
from acetune.cli.text import printable
from acetune.events import (Auditioned, EvalDone, Event, Finished, Progressed, Saved, StepDone, TrainStarted,
                            Warned)

RESOLVED_CONFIG = "config.resolved.toml"
_EXIT_CODES = {"stopped": exit_codes.STOPPED, "halted": exit_codes.HALTED}  # by Finished.reason; else OK


def train_and_log(run_config, console: Console, control=None) -> list[Event]:
    """Run with the run folder's logs (config.resolved.toml, events.jsonl, TensorBoard) and a progress bar.

    Returns every event, for callers (the demo) that summarise the run afterwards.
    """
    from acetune.config import write_config
    from acetune.train.loop import run
    from acetune.train.sinks import JsonlSink, TensorBoardSink

    out = Path(run_config.save.output_dir)
    sinks: list[Any] = []
    seen: list[Event] = []
    try:
        events = run(run_config, control)
        first = next(events, None)  # setup and checks happen before the run folder is touched
        if first is None:  # a data-parallel rank other than 0 trains silently; rank 0 reports and logs
            return seen
        out.mkdir(parents=True, exist_ok=True)
        write_config(run_config, out / RESOLVED_CONFIG)
        sinks.append(JsonlSink(out / "events.jsonl"))
        if run_config.log.tensorboard:
            sinks.append(TensorBoardSink(out / "logs"))
        sinks.append(seen.append)
        render(_logged(chain([first], events), sinks), console)
    finally:
        for sink in sinks:
            if hasattr(sink, "close"):
                sink.close()
    return seen


def exit_code(events: list[Event]) -> int:
    """The run's exit code, from how it finished: a stopped or halted run is not a complete one."""
    reasons = [event.reason for event in events if isinstance(event, Finished)]
    return _EXIT_CODES.get(reasons[-1], exit_codes.OK) if reasons else exit_codes.OK


def _logged(events: Iterable[Event], sinks: list[Any]) -> Iterator[Event]:
    for event in events:
        for sink in sinks:
            sink(event)
        yield event


def render(events: Iterable[Event], console: Console) -> None:
    """A bar that advances every optimizer step and ends at 100 % on a complete run; plain lines when piped."""
    bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                   disable=not console.is_terminal)
    task = None
    with bar:
        for event in events:
            if isinstance(event, TrainStarted):
                task = bar.add_task("train", total=event.plan["total_steps"], info="")
                console.print(_plan_line(event), highlight=False)
            elif isinstance(event, (StepDone, Progressed)) and task is not None:
                info = _step_info(event) if isinstance(event, StepDone) else None
                bar.update(task, completed=event.step if isinstance(event, StepDone) else event.done,
                           **({"info": info} if info else {}))
                if info and not console.is_terminal:
                    console.print(f"step {event.step}: {info}", highlight=False)
            elif isinstance(event, Finished):
                if task is not None and event.reason == "complete":
                    bar.update(task, total=event.summary.get("step"), completed=event.summary.get("step"))
                bar.console.print(f"finished ({event.reason}) at step {event.summary.get('step')}", highlight=False)
            else:
                _print_other(bar.console, event)


def _plan_line(event: TrainStarted) -> str:
    plan = event.plan
    line = (f"plan: {plan['total_steps']} steps, effective batch {plan['effective_batch']}, "
            f"{plan['trainable_parameters']:,} trainable parameters, {plan['precision']} on {plan['device']}")
    return line + (f"; resumed from {event.resumed_from}" if event.resumed_from else "")


def _step_info(event: StepDone) -> str:
    return f"loss {event.loss:.4f} lr {event.lr:.2e} {event.samples_per_s:.1f} samples/s"


def _print_other(console: Console, event: Event) -> None:
    if isinstance(event, EvalDone):
        console.print(f"eval at step {event.step}: {event.loss:.4f}" + (" (best)" if event.best else ""),
                      highlight=False)
    elif isinstance(event, Saved):
        console.print(f"saved {event.kind} at step {event.step}: {printable(str(event.path))}", highlight=False)
    elif isinstance(event, Auditioned):
        what = "base model" if event.strength is None else f"strength {event.strength:g}"
        console.print(f"audition at step {event.step} ({what}, seed {event.seed}): {printable(str(event.path))}",
                      highlight=False)
    elif isinstance(event, Warned):
        console.print(f"[yellow]warning[/] {printable(event.text)}", highlight=False)
