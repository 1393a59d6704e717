"""`acetune estimate-memory`: predicted peak memory of a training config, before running it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.config import resolve_config
from acetune.model import named_config
from acetune.model.bundle import resolve_dit
from acetune.model.checkpoint import read_model_config
from acetune.model.weights import parse_dtype
from acetune.train.memory import estimate_memory


def estimate_memory_command(
    config: list[Path] = typer.Option(None, "--config", "-c", help="TOML/JSON config file(s)."),
    preset: str = typer.Option(None, help="Built-in or user preset."),
    set_: list[str] = typer.Option(None, "--set", help="Override one field (repeatable)."),
    checkpoint_dir: str = typer.Option(None, help="Read the architecture from this checkpoint's config.json."),
    architecture: str = typer.Option("2b", help="Without --checkpoint-dir: 2b, xl, mid, small or tiny."),
    frames: int = typer.Option(None, help="Latent frames per sample (default: data.crop_frames, or 240 s)."),
    condition: int = typer.Option(300, help="Condition tokens per sample (lyrics + caption)."),
    dtype: str = typer.Option("bf16", help="Compute dtype of the frozen base: bf16, fp16 or fp32."),
    memory_gib: float = typer.Option(None, help="Memory of your device: the estimate is checked against it."),
) -> None:
    """Weights, gradients, optimizer states and activations of one training step (meta-device dry run)."""
    overrides = list(set_ or []) + ([f'data.checkpoint_dir="{checkpoint_dir}"'] if checkpoint_dir else [])
    run = resolve_config(preset=preset, files=list(config or []), overrides=overrides)
    if checkpoint_dir:
        model_config = read_model_config(resolve_dit(checkpoint_dir, run.data.model))
    else:
        model_config = named_config(architecture)
    estimate = estimate_memory(run, model_config, frames=frames, condition=condition, dtype=parse_dtype(dtype))
    console = Console(soft_wrap=True)
    table = Table("part", "GiB")
    for name, value in estimate.rows():
        table.add_row(name, f"{value / 2**30:.2f}")
    console.print(f"{run.adapter.kind.value}, {estimate.trainable_parameters:,} trainable parameters, batch "
                  f"{run.data.batch_size}, checkpointing {run.loop.gradient_checkpointing}")
    console.print(table)
    if memory_gib is not None:
        need = estimate.total / 2**30
        if need > 0.9 * memory_gib:
            console.print(f"[red]does not fit[/]: {need:.1f} GiB predicted for {memory_gib:.0f} GiB. Try "
                          "--set loop.gradient_checkpointing=1.0, a shorter data.crop_frames, or a LoRA preset "
                          "(`acetune presets list`).")
        else:
            console.print(f"[green]fits[/]: {need:.1f} GiB of {memory_gib:.0f} GiB")
