"""User presets: save, list, import and export preset files in a folder of the user's.

The folder is `default_presets_dir()` ($ACETUNE_PRESETS_DIR, else ~/.config/acetune/presets) unless
the caller passes `folder`. A user preset is `<folder>/<name>.toml` with a `description`, its
`config_version` and only the fields that differ from the defaults. Names are `[a-z0-9_-]+` and
may not be a built-in preset's name. Everything saved or imported is validated first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acetune.atomic import write_text_atomic
from acetune.config.files import dumps_json, dumps_toml, load_config_file, parse_toml, toml_value
from acetune.config.loader import config_deltas, config_from_dict, config_layer, config_to_dict, merge_dicts, validate
from acetune.config.presets import (
    BUILTIN_PRESETS,
    builtin_preset_text,
    check_preset_name,
    default_presets_dir,
    load_preset_data,
    user_preset_path,
)
from acetune.config.schema import CONFIG_VERSION, RunConfig
from acetune.errors import ConfigError


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    builtin: bool
    path: Path | None = None  # user presets only
    problem: str | None = None  # why a file in the user folder cannot be used


def save_preset(name: str, data: dict, *, folder: Path | None = None, overwrite: bool = False,
                description: str | None = None) -> Path:
    """Validate `data` (deltas or a whole config) over the defaults and save only its deltas."""
    check_preset_name(name)
    if name in BUILTIN_PRESETS:
        raise ConfigError(f"{name!r} is a built-in preset", fix="choose another name for your preset")
    path = user_preset_path(name, folder)
    if path.exists() and not overwrite:
        raise ConfigError(f"preset {name!r} already exists", path=path, fix="pass --overwrite, or choose another name")
    if description is None:
        description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"preset {name}: description must be a string, got {description!r}")
    deltas = config_deltas(_checked(config_layer(data, source=f"preset {name}"), f"preset {name}"))
    deltas.pop("config_version", None)
    header = {"description": description, "config_version": CONFIG_VERSION}
    try:
        text = dumps_toml({**header, **deltas})
    except ValueError as err:  # a null where the default is not null: TOML has no null
        raise ConfigError(f"preset {name}: {err}", fix="set a value instead of null") from None
    write_text_atomic(path, text)
    return path


def list_presets(*, folder: Path | None = None) -> list[PresetInfo]:
    """Built-in presets, then the user's (sorted); unusable user files are listed with their problem."""
    infos = [PresetInfo(name, load_preset_data(name)["description"], builtin=True) for name in BUILTIN_PRESETS]
    folder = folder or default_presets_dir()
    if not folder.is_dir():
        return infos
    for path in sorted(folder.glob("*.toml")):
        infos.append(_user_info(path))
    return infos


def import_preset(path: Path | str, *, name: str | None = None, folder: Path | None = None,
                  overwrite: bool = False) -> Path:
    """Validate a preset or config file and save it as user preset `name` (default: the file's stem)."""
    path = Path(path)
    if name is None:
        name = path.stem
        try:
            check_preset_name(name)
        except ConfigError:
            raise ConfigError(f"the file name {name!r} is not a valid preset name", path=path,
                              fix="pass a name with --name (lower-case letters, digits, '_' and '-')") from None
    data = load_config_file(path)
    config_layer(data, source=str(path))  # unknown keys and types name the imported file
    return save_preset(name, data, folder=folder, overwrite=overwrite)


def export_preset(name: str, path: Path | str, *, folder: Path | None = None, overwrite: bool = False) -> Path:
    """Write a built-in or user preset to `path` (.toml keeps a built-in's comments; .json is plain)."""
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise ConfigError("unsupported preset file type", path=path, fix="export to a .toml or .json file")
    if path.exists() and not overwrite:
        raise ConfigError("the file already exists", path=path, fix="pass --overwrite, or choose another file")
    data = load_preset_data(name, folder=folder)
    _checked(config_layer(data, source=f"preset {name}"), f"preset {name}")
    if path.suffix.lower() == ".json":
        text = dumps_json(data)
    elif name in BUILTIN_PRESETS:
        text = builtin_preset_text(name)
    else:
        text = dumps_toml(data)
    write_text_atomic(path, text)
    return path


def preset_text(name: str, *, folder: Path | None = None) -> str:
    """A preset as TOML: a built-in's own file (with comments), or a user preset's settings."""
    if name in BUILTIN_PRESETS:
        return builtin_preset_text(name)
    data = load_preset_data(name, folder=folder)
    return f"# user preset {toml_value(name)}\n" + dumps_toml(data)


def _checked(layer: dict, source: str) -> RunConfig:
    config = config_from_dict(merge_dicts(config_to_dict(RunConfig()), layer), source=source)
    validate(config)
    return config


def _user_info(path: Path) -> PresetInfo:
    name = path.stem
    try:
        check_preset_name(name)
    except ConfigError:
        return PresetInfo(name, "", builtin=False, path=path, problem="file name is not a valid preset name")
    if name in BUILTIN_PRESETS:
        return PresetInfo(name, "", builtin=False, path=path, problem="shadows a built-in preset; rename the file")
    try:
        data = parse_toml(path.read_text(encoding="utf-8"), path)
        description = data.get("description", "")
        config_layer(data, source=str(path))
    except (ConfigError, OSError, UnicodeDecodeError) as err:
        return PresetInfo(name, "", builtin=False, path=path, problem=str(err).splitlines()[0])
    return PresetInfo(name, description, builtin=False, path=path)
