"""`acetune train`: resolve the config (defaults < preset < files < flags and --set), run, render, log.

Resuming starts from the run folder's own config.resolved.toml: flags that repeat it are fine,
and a real change is refused with each changed key listed. The first Ctrl-C (or SIGTERM) asks the
loop to stop at the next step boundary, which saves a resumable checkpoint, and the command exits
with STOPPED (4); a second one aborts. A run halted by non-finite losses exits with HALTED (5).
"""

from __future__ import annotations

import signal
from pathlib import Path

import typer
from rich.console import Console

from acetune.cli.config_flags import ConfigFlag, with_config_flags
from acetune.cli.train_view import RESOLVED_CONFIG, exit_code, train_and_log

TRAIN_FLAGS = (
    ConfigFlag("--cache", "data.cache", "FOLDER"),
    ConfigFlag("--checkpoint-dir", "data.checkpoint_dir", "FOLDER"),
    ConfigFlag("--model", "data.model", "NAME"),
    ConfigFlag("--out", "save.output_dir", "FOLDER"),
    ConfigFlag("--resume-from", "save.resume_from", "latest|FOLDER"),
    ConfigFlag("--adapter-kind", "adapter.kind"),
    ConfigFlag("--rank", "adapter.rank"),
    ConfigFlag("--alpha", "adapter.alpha"),
    ConfigFlag("--lr", "optim.lr"),
    ConfigFlag("--epochs", "loop.epochs"),
    ConfigFlag("--max-steps", "loop.max_steps"),
    ConfigFlag("--batch-size", "data.batch_size"),
    ConfigFlag("--grad-accum", "optim.grad_accum"),
    ConfigFlag("--seed", "loop.seed"),
    ConfigFlag("--precision", "loop.precision"),
    ConfigFlag("--device", "loop.device"),
    ConfigFlag("--save-every", "save.save_every"),
    ConfigFlag("--tag", "data.tag"),
)


@with_config_flags(TRAIN_FLAGS)
def train_command(
    config: list[Path] = typer.Option(None, "--config", "-c", help="TOML/JSON config file(s), applied in order."),
    preset: str = typer.Option(None, help="Built-in or user preset (`acetune presets list`), or auto (by device "
                                          "memory, fitted to the songs)."),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                   help="Override any config field: --set optim.lr=1e-4 (repeatable)."),
    crop_seconds: float = typer.Option(None, help="Random crop length in seconds (data.crop_frames / 25); 0 = whole "
                                                  "songs."),
    config_overrides: list[str] = (),
) -> int:
    """Train an adapter (or the decoder) on a preprocessed cache."""
    console = Console(soft_wrap=True, highlight=False)
    overrides = [*config_overrides, *_crop_override(crop_seconds), *(set_ or [])]
    run_config = resolve_train_config(preset, list(config or []), overrides, console)
    from acetune.train.loop import Control

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
        events = train_and_log(run_config, console, control)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code(events)  # 0 complete, 4 stopped on request, 5 halted on non-finite losses


def resolve_train_config(preset: str | None, files: list[Path], overrides: list[str], console: Console):
    """The run's config: `--preset auto` chosen for the device and the songs, a resume based on the run's own."""
    from acetune.config import resolve_config
    from acetune.train.auto import AUTO, choose_auto

    if preset == AUTO:
        probe = resolve_config(files=files, overrides=overrides)
        choice = choose_auto(probe.loop.device, probe.data.cache or None)
        preset, overrides = choice.preset, [*choice.overrides, *overrides]
        for note in choice.notes:
            console.print(note, markup=False)
    config = resolve_config(preset=preset, files=files, overrides=overrides)
    own = Path(config.save.output_dir) / RESOLVED_CONFIG
    if config.save.resume_from is None or not own.is_file():
        return config
    console.print(f"resuming with the run's own settings ({own})"
                  + ("; --preset is for new runs and is not applied" if preset else ""), markup=False)
    return resolve_config(files=files, overrides=overrides, base=own)


def _crop_override(seconds: float | None) -> list[str]:
    if seconds is None:
        return []
    from acetune.audio import LATENT_FRAMES_PER_SECOND

    return [f"data.crop_frames={round(seconds * LATENT_FRAMES_PER_SECOND)}"]
