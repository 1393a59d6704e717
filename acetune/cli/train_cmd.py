"""`acetune train`: resolve the config (defaults < preset < files < --set), run, render, log.

The first Ctrl-C (or SIGTERM) asks the loop to stop at the next step boundary, which saves a
resumable checkpoint; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import signal
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from acetune.config import resolve_config, write_config
from acetune.config.presets import auto_preset, detect_device_memory_gib
from acetune.events import Auditioned, EvalDone, Event, Finished, Saved, StepDone, TrainStarted, Warned
from acetune.train.loop import Control, run
from acetune.train.sinks import JsonlSink, TensorBoardSink


def _overrides(cache, checkpoint_dir, output_dir, resume_from, adapter) -> list[str]:
    pairs = {"data.cache": cache, "data.checkpoint_dir": checkpoint_dir, "save.output_dir": output_dir,
             "save.resume_from": resume_from, "adapter.kind": adapter}
    return [f'{key}="{value}"' for key, value in pairs.items() if value is not None]


def train_command(
    config: list[Path] = typer.Option(None, "--config", "-c", help="TOML/JSON config file(s), applied in order."),
    preset: str = typer.Option(None, help="Built-in or user preset (`acetune presets list`), or auto (by GPU memory)."),
    set_: list[str] = typer.Option(None, "--set", help="Override one field: --set optim.lr=1e-4 (repeatable)."),
    cache: str = typer.Option(None, help="Cache folder (data.cache)."),
    checkpoint_dir: str = typer.Option(None, help="ACE-Step checkpoints folder (data.checkpoint_dir)."),
    output_dir: str = typer.Option(None, help="Run folder (save.output_dir)."),
    resume_from: str = typer.Option(None, help="A checkpoint folder, or 'latest' (save.resume_from)."),
    adapter: str = typer.Option(None, help="lora, dora, lokr, loha or full (adapter.kind)."),
) -> None:
    """Train an adapter (or the decoder) on a preprocessed cache."""
    overrides = _overrides(cache, checkpoint_dir, output_dir, resume_from, adapter) + list(set_ or [])
    if preset == "auto":  # pick by the memory of the device that will train
        preset = auto_preset(detect_device_memory_gib("auto"))
        Console(soft_wrap=True).print(f"preset auto -> {preset}")
    run_config = resolve_config(preset=preset, files=list(config or []), overrides=overrides)
    console = Console(soft_wrap=True)
    control = Control()
    interrupts = {"count": 0}

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        interrupts["count"] += 1
        if interrupts["count"] > 1:
            raise KeyboardInterrupt
        control.stop = True
        console.print("[yellow]stopping at the next step boundary (saving a checkpoint); Ctrl-C again aborts[/]")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        train_and_log(run_config, console, control)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train_and_log(run_config, console: Console, control: Control | None = None) -> list[Event]:
    """Run with the run folder's logs (config.resolved.toml, events.jsonl, TensorBoard) and a progress bar.

    Returns every event, for callers (the demo) that summarise the run afterwards.
    """
    out = Path(run_config.save.output_dir)
    sinks: list = []
    seen: list[Event] = []
    try:
        events = run(run_config, control)
        first = next(events, None)  # setup and checks happen before the run folder is touched
        if first is None:  # a data-parallel rank other than 0 trains silently; rank 0 reports and logs
            return seen
        out.mkdir(parents=True, exist_ok=True)
        write_config(run_config, out / "config.resolved.toml")
        sinks.append(JsonlSink(out / "events.jsonl"))
        if run_config.log.tensorboard:
            sinks.append(TensorBoardSink(out / "logs"))
        sinks.append(seen.append)
        _render([first], events, sinks, console)
    finally:
        for sink in sinks:
            if hasattr(sink, "close"):
                sink.close()
    return seen


def _render(first, events, sinks, console: Console) -> None:
    bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                   disable=not console.is_terminal)
    task = None
    with bar:
        for event in [*first, *events]:
            for sink in sinks:
                sink(event)
            if isinstance(event, TrainStarted):
                plan = event.plan
                task = bar.add_task("train", total=plan["total_steps"], info="")
                console.print(f"plan: {plan['total_steps']} steps, effective batch {plan['effective_batch']}, "
                              f"{plan['trainable_parameters']:,} trainable parameters, {plan['precision']} on "
                              f"{plan['device']}" + (f"; resumed from {event.resumed_from}" if event.resumed_from else ""))
            elif isinstance(event, StepDone):
                info = f"loss {event.loss:.4f} lr {event.lr:.2e} {event.samples_per_s:.1f} samples/s"
                if task is not None:
                    bar.update(task, completed=event.step, info=info)
                if not console.is_terminal:
                    console.print(f"step {event.step}: {info}")
            elif isinstance(event, EvalDone):
                bar.console.print(f"eval at step {event.step}: {event.loss:.4f}" + (" (best)" if event.best else ""))
            elif isinstance(event, Saved):
                bar.console.print(f"saved {event.kind} at step {event.step}: {event.path}")
            elif isinstance(event, Auditioned):
                what = "base model" if event.strength is None else f"strength {event.strength:g}"
                bar.console.print(f"audition at step {event.step} ({what}, seed {event.seed}): {event.path}")
            elif isinstance(event, Warned):
                bar.console.print(f"[yellow]warning[/] {event.text}")
            elif isinstance(event, Finished):
                bar.console.print(f"finished ({event.reason}) at step {event.summary.get('step')}")
