"""`acetune adapter info`, `acetune merge`, `acetune export-comfyui`, `acetune export-diffusers`: what to do with a
trained adapter."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.adapter_specs import ALPHA_HELP, check_adapters, parse_adapter
from acetune.cli.run_folders import missing_adapter_error
from acetune.cli.text import printable
from acetune.errors import ConfigError

app = typer.Typer(help="Inspect adapters.", no_args_is_help=True)
SHOWN_METADATA = ("trigger_word", "tag_position", "variant", "base_model", "recommended_shift", "recommended_steps",
                  "recommended_guidance", "step", "precision", "rope_dtype", "diff_base_model", "cache_fingerprint",
                  "acetune_version")
FILE_ALPHA_HELP = "lora_alpha for a file that does not state one (a bare adapter_model.safetensors)."


@app.command("info")
def info_command(path: Path = typer.Argument(..., help="Adapter folder or file (PEFT, LyCORIS, kohya, ComfyUI, "
                                                       "diffusers, full)."),
                 alpha: float = typer.Option(None, help=FILE_ALPHA_HELP)) -> None:
    """Format, kind, rank / alpha / scale per module group, the tools that load it, and its metadata."""
    from acetune.adapters.compatibility import loads_in
    from acetune.adapters.formats import inspect_adapter, read_adapter
    from acetune.adapters.module_groups import group_rows

    if not path.exists():
        raise missing_adapter_error(path)
    header = inspect_adapter(path, alpha=alpha)
    adapter = read_adapter(path, alpha=alpha)
    console = Console(soft_wrap=True)
    table = Table(show_header=False, box=None)
    table.add_row("file", printable(str(adapter.path)))
    table.add_row("format", adapter.format)
    table.add_row("kind", adapter.kind)
    if adapter.alpha_source:
        table.add_row("alpha from", printable(adapter.alpha_source))
    table.add_row("modules", f"{len(adapter.deltas)} (e.g. {printable(', '.join(sorted(adapter.deltas)[:3]))})")
    for key in SHOWN_METADATA:
        if adapter.metadata.get(key):
            table.add_row(key, printable(adapter.metadata[key]))
    console.print(table, "")
    groups = Table("group", "modules", "layers", "kind", "rank", "alpha", "scale (alpha/r)", box=None)
    for row in group_rows(adapter.deltas):
        groups.add_row(printable(f"{row.group} {row.parts}"), str(row.modules), str(row.layers or "—"), row.kinds,
                       row.rank, row.alpha, row.scale)
    console.print(groups, "")
    tools = Table("loads in", "", "", box=None)
    for support in loads_in(header, adapter):
        tools.add_row(support.tool, support.loads, printable(support.note))
    console.print(tools)
    for warning in adapter.warnings:
        console.print(f"[yellow]warning[/] {printable(warning)}")


def merge_command(
    adapter: list[str] = typer.Option(..., help="Adapter folder or file, optionally PATH@STRENGTH (repeatable)."),
    checkpoint_dir: Path = typer.Option(..., help="ACE-Step checkpoints folder, the DiT folder itself, or a diffusers "
                                                  "pipeline folder."),
    out: Path = typer.Option(..., help="New model folder to write (see --format)."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir (default acestep-v15-turbo)."),
    save_dtype: str = typer.Option(None, help="Save as fp32, bf16 or fp16 (default: the base's dtype)."),
    adapter_alpha: float = typer.Option(None, help=ALPHA_HELP),
    overwrite: bool = typer.Option(False, help="Replace an existing --out folder."),
    layout: str = typer.Option("official", "--format",
                               help="official (ACE-Step layout) or diffusers (an AceStepPipeline folder)."),
) -> None:
    """Bake adapters into the base DiT: a folder acetune, the ACE-Step app or diffusers load like the original."""
    adapters = [parse_adapter(spec) for spec in adapter]
    check_adapters(adapters, adapter_alpha)
    from acetune.adapters.merge import merge_into_model
    from acetune.model.bundle import resolve_dit

    console = Console(soft_wrap=True, highlight=False)
    dit = resolve_dit(checkpoint_dir, model)
    with console.status(f"merging {len(adapters)} adapter(s) into {printable(str(dit))} ..."):
        written = merge_into_model(dit, adapters, out, dtype=save_dtype, overwrite=overwrite, format=layout,
                                   alpha=adapter_alpha)
    what = ("a diffusers AceStepPipeline folder" if layout == "diffusers"
            else "config.json, model.safetensors, silence_latent.pt")
    console.print(f"merged {len(adapter)} adapter(s) into [bold]{printable(str(written))}[/] ({what})")


def export_comfyui_command(
    adapter: Path = typer.Argument(..., help="Adapter folder or file to export."),
    out: Path = typer.Option(None, help="Output .safetensors (default: <run>_step<N>_comfyui.safetensors in the run "
                                        "folder)."),
    checkpoint_dir: Path = typer.Option(None, help="DoRA: the checkpoints folder (or DiT folder) it was trained on; "
                                                   "the exact export stores full weight differences from it."),
    model: str = typer.Option(None, help="DiT folder inside --checkpoint-dir (default: the adapter's base_model)."),
    dora_as_lora: bool = typer.Option(False, help="DoRA as small LoRA-style factors, which ComfyUI applies "
                                                  "12–32 % off (no base model needed)."),
    diff_dtype: str = typer.Option("fp32", help="DoRA weight differences in fp32 (exact) or fp16 (half the size)."),
    prefix: str = typer.Option("base_model.model", help="Key prefix: base_model.model or diffusion_model.decoder."),
    alpha: float = typer.Option(None, help=FILE_ALPHA_HELP),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
) -> None:
    """One ComfyUI LoRA file (strength 1.0 in ComfyUI means what it meant in training; DoRA exact)."""
    from acetune.adapters.comfyui import (DIFF_DTYPES, DORA_AS_LORA_WARNING, diff_bytes, export_comfyui,
                                          factor_bytes, weight_decomposed)
    from acetune.adapters.formats import read_adapter

    console = Console(soft_wrap=True, highlight=False)
    _check_out(out, "comfyui")
    if diff_dtype not in DIFF_DTYPES:
        raise ConfigError(f"--diff-dtype {diff_dtype!r} is not one of {', '.join(DIFF_DTYPES)}",
                          fix="use fp32 (exact) or fp16 (half the size)")
    read = read_adapter(adapter, alpha=alpha)
    out = _export_path(adapter, out, read.metadata, "comfyui")
    base = None
    if weight_decomposed(read) and dora_as_lora:
        console.print(f"[yellow]warning[/] {DORA_AS_LORA_WARNING}")
    elif weight_decomposed(read) and checkpoint_dir is not None:  # without it export_comfyui says what is missing
        base = _dora_base(checkpoint_dir, model, read.metadata)
        console.print(f"exact {read.kind} export: full weight differences from {printable(str(base))} for "
                      f"{len(read.deltas)} tensors, about {_size(diff_bytes(read, diff_dtype))} ({diff_dtype}); "
                      f"--dora-as-lora would write {_size(factor_bytes(read))}, played 12–32 % off in ComfyUI")
    written = export_comfyui(read, out, prefix=prefix, base=base, dora_as_lora=dora_as_lora, diff_dtype=diff_dtype,
                             overwrite=overwrite)
    for warning in read.warnings:
        console.print(f"[yellow]warning[/] {printable(warning)}")
    where = f"for {printable(base.name)} only; " if base is not None else ""
    console.print(f"wrote [bold]{printable(str(written))}[/] ({where}copy it into ComfyUI/models/loras/)")


def export_diffusers_command(
    adapter: Path = typer.Argument(..., help="Adapter folder or file to export (LoRA, DoRA or LoKr)."),
    out: Path = typer.Option(None, help="Output .safetensors (default: <run>_step<N>_diffusers.safetensors in the "
                                        "run folder)."),
    alpha: float = typer.Option(None, help=FILE_ALPHA_HELP),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
) -> None:
    """One diffusers adapter file under diffusers' names, with alpha/rank in its header (the trained strength)."""
    from acetune.adapters.diffusers_export import diffusers_loading, export_diffusers
    from acetune.adapters.formats import read_adapter

    _check_out(out, "diffusers")
    read = read_adapter(adapter, alpha=alpha)
    written = export_diffusers(read, _export_path(adapter, out, read.metadata, "diffusers"), overwrite=overwrite)
    console = Console(soft_wrap=True, highlight=False)
    for warning in read.warnings:
        console.print(f"[yellow]warning[/] {printable(warning)}")
    _, how = diffusers_loading(read_adapter(written))
    console.print(f"wrote [bold]{printable(str(written))}[/]; in diffusers: {printable(how)}")


def _check_out(out: Path | None, tool: str) -> None:
    """--out must name a .safetensors file (checked before the adapter is read)."""
    if out is not None and out.suffix != ".safetensors":
        raise ConfigError(f"--out {out} must end in .safetensors", fix=f"e.g. --out my_style_{tool}.safetensors")


def _export_path(adapter: Path, out: Path | None, metadata: dict[str, str], tool: str) -> Path:
    """--out, or `<run>[_best][_step<N>]_<tool>.safetensors` in the run folder (`default_export_path`)."""
    from acetune.adapters.export_names import default_export_path

    return out if out is not None else default_export_path(adapter, metadata, tool=tool)


def _dora_base(checkpoint_dir: Path, model: str | None, metadata: dict[str, str]) -> Path:
    """The DiT folder whose weights the exact DoRA export subtracts; --model defaults to the adapter's base."""
    from acetune.model.bundle import resolve_dit

    trained_on = metadata.get("base_model")
    if model is None and trained_on and (Path(checkpoint_dir) / trained_on).is_dir():
        model = trained_on
    return resolve_dit(checkpoint_dir, model)


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
