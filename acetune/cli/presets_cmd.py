"""`acetune presets ...`: list, show, save, import and export training presets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from acetune.cli.text import printable
from acetune.config import (
    AdapterKind,
    apply_overrides,
    config_layer,
    config_to_dict,
    dumps_toml,
    export_preset,
    import_preset,
    list_presets,
    load_config_file,
    merge_dicts,
    preset_for_adapter,
    preset_text,
    resolve_config,
    save_preset,
)
from acetune.errors import ConfigError

app = typer.Typer(help="Built-in and saved training presets (sparse TOML over the defaults).", no_args_is_help=True)

_FOLDER_HELP = "User presets folder (default: $ACETUNE_PRESETS_DIR, else ~/.config/acetune/presets)."
_SET_HELP = "Override a setting, e.g. --set optim.lr=1e-4 (repeatable)."


def _console() -> Console:
    return Console(soft_wrap=True)


@app.command("list")
def list_command(folder: Path = typer.Option(None, "--folder", help=_FOLDER_HELP)) -> None:
    """Built-in and user presets with their descriptions."""
    table = Table("name", "source", "description")
    for info in list_presets(folder=folder):
        source = "built-in" if info.builtin else printable(f"user ({info.path})")
        text = printable(info.description) if info.problem is None else f"[red]unusable:[/] {printable(info.problem)}"
        table.add_row(printable(info.name), source, text)
    _console().print(table)


@app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Preset name."),
    adapter: AdapterKind = typer.Option(None, "--adapter-kind", help="Show the preset adapted to this adapter kind."),
    overrides: list[str] = typer.Option([], "--set", help=_SET_HELP),
    folder: Path = typer.Option(None, "--folder", help=_FOLDER_HELP),
) -> None:
    """The preset's deltas over the defaults, then the fully resolved config."""
    if adapter is None:
        deltas = preset_text(name, folder=folder)
    else:
        adapted = preset_for_adapter(name, adapter, folder=folder)
        deltas = f"# preset {name} adapted to {adapter.value}\n" + dumps_toml(adapted)
        overrides = [f"adapter.kind={adapter.value}", *overrides]
    config = resolve_config(preset=name, overrides=overrides, presets_dir=folder)
    console = _console()
    console.print(deltas.rstrip("\n"), markup=False, highlight=False)
    console.print("\n# resolved config (defaults < preset < --set)", markup=False, highlight=False)
    console.print(dumps_toml(config_to_dict(config), skip_none=True).rstrip("\n"), markup=False, highlight=False)


@app.command("save")
def save_command(
    name: str = typer.Argument(..., help="Name of the new preset ([a-z0-9_-]+)."),
    from_file: Path = typer.Option(None, "--from", help="A TOML or JSON config whose settings become the preset."),
    overrides: list[str] = typer.Option([], "--set", help=_SET_HELP),
    description: str = typer.Option(None, "--description", help="One line shown by `presets list`."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a user preset of the same name."),
    folder: Path = typer.Option(None, "--folder", help=_FOLDER_HELP),
) -> None:
    """Save a config file (and --set overrides) as a user preset, keeping only what differs from the defaults."""
    if from_file is None and not overrides:
        raise ConfigError("nothing to save", fix="pass --from FILE and/or --set key=value")
    data: dict = {}
    if from_file is not None:
        raw = load_config_file(from_file)
        data = config_layer(raw, source=str(from_file))
        if description is None and isinstance(raw.get("description"), str):
            description = raw["description"]
    data = merge_dicts(data, config_layer(apply_overrides({}, overrides), source="--set", allow_description=False))
    path = save_preset(name, data, folder=folder, overwrite=overwrite, description=description or "")
    _console().print(f"saved preset [bold]{name}[/] to {path}")


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="A preset or config file (.toml or .json)."),
    name: str = typer.Option(None, "--name", help="Preset name (default: the file name without suffix)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a user preset of the same name."),
    folder: Path = typer.Option(None, "--folder", help=_FOLDER_HELP),
) -> None:
    """Validate a preset file and add it to the user presets."""
    path = import_preset(file, name=name, folder=folder, overwrite=overwrite)
    _console().print(f"imported preset [bold]{path.stem}[/] to {path}")


@app.command("export")
def export_command(
    name: str = typer.Argument(..., help="Built-in or user preset name."),
    out: Path = typer.Argument(..., help="File to write (.toml or .json)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
    folder: Path = typer.Option(None, "--folder", help=_FOLDER_HELP),
) -> None:
    """Write a preset to a file to share or edit."""
    path = export_preset(name, out, folder=folder, overwrite=overwrite)
    _console().print(f"exported preset [bold]{name}[/] to {path}")
