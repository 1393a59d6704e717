"""`acetune adapter info`, `acetune merge`, `acetune export-comfyui`, `acetune export-diffusers`: what to do with a
trained adapter."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.adapter_specs import check_adapters, parse_adapter
from acetune.cli.run_folders import missing_adapter_error
from acetune.cli.text import printable
from acetune.errors import ConfigError

app = typer.Typer(help="Inspect adapters.", no_args_is_help=True)
SHOWN_METADATA = ("trigger_word", "tag_position", "variant", "base_model", "recommended_shift", "recommended_steps",
                  "recommended_guidance", "step", "cache_fingerprint", "acetune_version")


@app.command("info")
def info_command(path: Path = typer.Argument(..., help="Adapter folder or file (PEFT, LyCORIS, ComfyUI, full).")) -> None:
    """Format, kind, adapted modules and the metadata the adapter carries."""
    from acetune.adapters.diffusers_export import diffusers_loading
    from acetune.adapters.formats import read_adapter

    if not path.exists():
        raise missing_adapter_error(path)
    adapter = read_adapter(path)
    console = Console(soft_wrap=True)
    table = Table(show_header=False, box=None)
    table.add_row("file", printable(str(adapter.path)))
    table.add_row("format", adapter.format)
    table.add_row("kind", adapter.kind)
    table.add_row("modules", f"{len(adapter.deltas)} (e.g. {', '.join(sorted(adapter.deltas)[:3])})")
    for key in SHOWN_METADATA:
        if adapter.metadata.get(key):
            table.add_row(key, printable(adapter.metadata[key]))
    table.add_row("diffusers", printable(diffusers_loading(adapter)))
    console.print(table)


def merge_command(
    adapter: list[str] = typer.Option(..., help="Adapter folder or file, optionally PATH@STRENGTH (repeatable)."),
    checkpoint_dir: Path = typer.Option(..., help="ACE-Step checkpoints folder, the DiT folder itself, or a diffusers "
                                                  "pipeline folder."),
    out: Path = typer.Option(..., help="New model folder to write (see --format)."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir (default acestep-v15-turbo)."),
    save_dtype: str = typer.Option(None, help="Save as fp32, bf16 or fp16 (default: the base's dtype)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out folder."),
    layout: str = typer.Option("official", "--format",
                               help="official (ACE-Step layout) or diffusers (an AceStepPipeline folder)."),
) -> None:
    """Bake adapters into the base DiT: a folder acetune, the ACE-Step app or diffusers load like the original."""
    adapters = [parse_adapter(spec) for spec in adapter]
    check_adapters(adapters)
    from acetune.adapters.merge import merge_into_model
    from acetune.model.bundle import resolve_dit

    console = Console(soft_wrap=True, highlight=False)
    dit = resolve_dit(checkpoint_dir, model)
    with console.status(f"merging {len(adapters)} adapter(s) into {printable(str(dit))} ..."):
        written = merge_into_model(dit, adapters, out, dtype=save_dtype, overwrite=overwrite, format=layout)
    what = ("a diffusers AceStepPipeline folder" if layout == "diffusers"
            else "config.json, model.safetensors, silence_latent.pt")
    console.print(f"merged {len(adapter)} adapter(s) into [bold]{printable(str(written))}[/] ({what})")


def export_comfyui_command(
    adapter: Path = typer.Argument(..., help="Adapter folder or file to export."),
    out: Path = typer.Option(None, help="Output .safetensors (default: <adapter>_comfyui.safetensors beside it)."),
    prefix: str = typer.Option("base_model.model", help="Key prefix: base_model.model or diffusion_model.decoder."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
) -> None:
    """One ComfyUI LoRA file (alpha baked in: strength 1.0 in ComfyUI means what it meant in training)."""
    from acetune.adapters.comfyui import export_comfyui

    out = _export_path(adapter, out, "comfyui")
    written = export_comfyui(adapter, out, prefix=prefix, overwrite=overwrite)
    Console(soft_wrap=True).print(f"wrote [bold]{printable(str(written))}[/] (copy it into ComfyUI/models/loras/)")


def export_diffusers_command(
    adapter: Path = typer.Argument(..., help="Adapter folder or file to export (LoRA, DoRA or LoKr)."),
    out: Path = typer.Option(None, help="Output .safetensors (default: <adapter>_diffusers.safetensors beside it)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
) -> None:
    """One diffusers adapter file under diffusers' names, with alpha/rank in its header (the trained strength)."""
    from acetune.adapters.diffusers_export import diffusers_loading, export_diffusers
    from acetune.adapters.formats import read_adapter

    out = _export_path(adapter, out, "diffusers")
    written = export_diffusers(adapter, out, overwrite=overwrite)
    Console(soft_wrap=True).print(f"wrote [bold]{printable(str(written))}[/]; in diffusers: "
                                  f"{printable(diffusers_loading(read_adapter(written)))}")


def _export_path(adapter: Path, out: Path | None, tool: str) -> Path:
    """--out, or `<adapter>_<tool>.safetensors` beside the adapter folder (or beside the folder holding the file)."""
    if out is None:
        stem = adapter.parent.name if adapter.is_file() else adapter.name
        out = (adapter.parent if adapter.is_file() else adapter).parent / f"{stem}_{tool}.safetensors"
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out} must end in .safetensors", fix=f"e.g. --out my_style_{tool}.safetensors")
    return out
