"""`acetune model ...`: inspect checkpoints and make tiny demo models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.text import printable
from acetune.errors import ConfigError, ModelLoadError

FULL_SIZE = ("2b", "xl")  # named configs too large to write as random demo checkpoints
app = typer.Typer(help="Inspect ACE-Step checkpoints.", no_args_is_help=True)


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1000 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.2f} {unit}"
        num_bytes /= 1000
    raise AssertionError("unreachable")


@app.command("info")
def info(
    path: str = typer.Argument(..., help="Checkpoint folder or Hub repo id (e.g. ACE-Step/Ace-Step1.5)."),
    variant: str = typer.Option(None, help="Name the variant of a fine-tune whose config does not say it."),
    strict: bool = typer.Option(True, help="Fail (exit 2) when keys or shapes differ from the architecture."),
) -> None:
    """Variant, parameters per component, file dtype, strict key check and sizes — headers only, fast."""
    from acetune.model.hub import locate_checkpoint
    from acetune.model.summary import summarize_checkpoint

    console = Console(soft_wrap=True)
    where = locate_checkpoint(path)
    if where.repo_id is not None:
        console.print(f"downloading {printable(where.describe())} ...")
    s = summarize_checkpoint(where, variant)
    source = "from the Hugging Face Hub, cached at" if where.repo_id is not None else "local folder"
    console.print(f"{source} [bold]{printable(s.folder)}[/]")
    console.print(f"variant: [bold]{printable(s.variant.name)}[/] ({printable(s.variant.evidence)})")
    cfg = s.config
    console.print(f"decoder: width {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads "
                  f"/ {cfg.num_key_value_heads} kv x {cfg.head_dim}; condition width {cfg.condition_hidden_size}; "
                  f"sliding window {cfg.sliding_window}; timestep mu {cfg.timestep_mu}, sigma {cfg.timestep_sigma}")
    table = Table("component", "parameters", "share")
    for part, count in s.parameters.items():
        table.add_row(part, f"{count:,}", f"{100 * count / max(s.total_parameters, 1):.1f} %")
    table.add_row("[bold]total[/]", f"[bold]{s.total_parameters:,}[/]", "")
    console.print(table)
    dtypes = ", ".join(f"{d} x{n}" for d, n in sorted(s.file_dtypes.items()))
    files = ", ".join(f"{name} ({_size(size)})" for name, size in s.weight_files)
    console.print(f"weights: {printable(files)}; tensor dtypes: {dtypes}")
    console.print(f"silence latent: {s.silence_frames} frames" if s.silence_frames else "silence latent: absent")
    status = "[green]ok[/]" if s.keys.ok else "[red]MISMATCH[/]"
    console.print(f"strict key check: {status} — {s.keys.describe()}")
    if strict and not s.keys.ok:
        raise ModelLoadError("the weights do not match the architecture in config.json (see above)", path=s.folder)


@app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="Model folder: official DiT folder (vae/ and the text encoder beside it) "
                                          "or a diffusers pipeline folder."),
    out: Path = typer.Option(..., help="New folder to write."),
    layout: str = typer.Option(..., "--format", help="official or diffusers (an AceStepPipeline folder)."),
    save_dtype: str = typer.Option(None, help="Save as fp32, bf16 or fp16 (default: the source's dtype)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out folder."),
) -> None:
    """Rewrite a model in the other layout: official <-> diffusers AceStepPipeline (weights unchanged)."""
    from acetune.model.convert import convert_model

    written = convert_model(path, out, format=layout, dtype=save_dtype, overwrite=overwrite)
    Console(soft_wrap=True).print(f"wrote [bold]{printable(str(written))}[/] ({layout} layout)")


@app.command("make-tiny")
def make_tiny(
    out: Path = typer.Argument(..., help="Folder to create (official layout)."),
    config: str = typer.Option("tiny", help="Named config, e.g. tiny or small (a wrong name lists them all)."),
    seed: int = typer.Option(0, help="Weight seed."),
    overwrite: bool = typer.Option(False, help="Replace an existing folder."),
    bundle: bool = typer.Option(False, help="Write a whole tiny checkpoints folder instead: DiT, vae/, text encoder "
                                            "and a 5 Hz LM (acestep-5Hz-lm-tiny/), as --checkpoint-dir takes it."),
) -> None:
    """Write a tiny random ACE-Step checkpoint (for trying acetune without the real weights)."""
    from acetune.model import NAMED, write_tiny_checkpoint

    if bundle:
        _make_tiny_bundle(out, config, seed, overwrite)
        return
    if config in FULL_SIZE or config not in NAMED:
        small = [name for name in NAMED if name not in FULL_SIZE]
        raise ConfigError(f"--config {config} is not a small named config", fix=f"use one of {', '.join(small)}")
    folder = write_tiny_checkpoint(out, config, seed, overwrite=overwrite)
    Console(soft_wrap=True).print(f"wrote {config} checkpoint to [bold]{folder}[/]")


def _make_tiny_bundle(out: Path, config: str, seed: int, overwrite: bool) -> None:
    import shutil

    from acetune.atomic import check_folder_target
    from acetune.model.tiny_bundle import write_tiny_bundle

    if config != "tiny":
        raise ConfigError(f"--bundle writes the tiny config only, not {config}", fix="leave out --config")
    check_folder_target(out, overwrite=overwrite)
    if out.exists():
        shutil.rmtree(out)
    folder = write_tiny_bundle(out, seed, lm=True)
    Console(soft_wrap=True).print(f"wrote a tiny checkpoints folder (DiT, VAE, text encoder, 5 Hz LM) to "
                                  f"[bold]{printable(str(folder))}[/]")
