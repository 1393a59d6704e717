"""`acetune estimate-memory`: predicted peak memory of a training config, before running it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.config.schema import Precision


def estimate_memory_command(
    config: list[Path] = typer.Option(None, "--config", "-c", help="TOML/JSON config file(s)."),
    preset: str = typer.Option(None, help="Built-in or user preset, or auto (chosen for --memory-gib, else for "
                                          "this machine's GPU)."),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Override one field (repeatable)."),
    checkpoint_dir: str = typer.Option(None, metavar="PATH",
                                       help="Read the architecture from this checkpoint's config.json."),
    architecture: str = typer.Option("2b", help="Without --checkpoint-dir: 2b, xl, mid, small or tiny."),
    frames: int = typer.Option(None, help="Latent frames per sample (default: data.crop_frames, or 240 s)."),
    condition: int = typer.Option(300, help="Condition tokens per sample (lyrics + caption)."),
    precision: Precision = typer.Option(Precision.BF16, help="Compute dtype of the frozen base (auto = what "
                                                             "training here would use)."),
    memory_gib: float = typer.Option(None, help="Memory of your device: the estimate is checked against it."),
) -> None:
    """Weights, gradients, optimizer states and activations of one training step (meta-device dry run)."""
    from acetune.config import resolve_config
    from acetune.model import named_config
    from acetune.model.bundle import resolve_dit
    from acetune.model.checkpoint import read_model_config
    from acetune.model.devices import precision_dtype, resolve_device, resolve_precision
    from acetune.train.auto import AUTO, choose_auto
    from acetune.train.memory import estimate_memory

    console = Console(soft_wrap=True, highlight=False)
    overrides = list(set_ or []) + ([f'data.checkpoint_dir="{checkpoint_dir}"'] if checkpoint_dir else [])
    if preset == AUTO:
        choice = choose_auto(memory_gib=memory_gib)
        preset = choice.preset
        for note in choice.notes:
            console.print(note)
    run = resolve_config(preset=preset, files=list(config or []), overrides=overrides)
    if checkpoint_dir:
        model_config = read_model_config(resolve_dit(checkpoint_dir, run.data.model))
    else:
        model_config = named_config(architecture)
    dtype = resolve_precision(precision, resolve_device("auto")) if precision == Precision.AUTO else \
        precision_dtype(precision)
    estimate = estimate_memory(run, model_config, frames=frames, condition=condition, dtype=dtype)
    _report(console, run, estimate, memory_gib)


def _report(console: Console, run, estimate, memory_gib: float | None) -> None:
    """The estimate's table, and whether it fits `memory_gib` (with what to try when it does not)."""
    from acetune.train.memory import fits, memory_levers

    table = Table("part", "GiB")
    for name, value in estimate.rows():
        table.add_row(name, f"{value / 2**30:.2f}")
    console.print(f"{run.adapter.kind.value}, {estimate.trainable_parameters:,} trainable parameters, batch "
                  f"{run.data.batch_size}, checkpointing {run.loop.gradient_checkpointing}"
                  + (", MLP recomputed" if run.loop.recompute_mlp else ""))
    console.print(table)
    if memory_gib is None:
        return
    need = estimate.total / 2**30
    if fits(estimate.total, memory_gib * 2**30):
        console.print(f"[green]fits[/]: {need:.1f} GiB of {memory_gib:.0f} GiB")
    else:
        console.print(f"[red]does not fit[/]: {need:.1f} GiB predicted for {memory_gib:.0f} GiB. Try "
                      f"{memory_levers(run, as_flags=True)} (`acetune presets list`).")
