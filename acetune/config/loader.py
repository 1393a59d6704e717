"""The one strict loader: dicts, files, presets and `--set` overrides into a validated `RunConfig`.

Precedence is defaults < preset < config files (in the order given) < `--set` overrides. Each
source is merged as a nested dict; tables merge key by key, any other value (arrays too) replaces.
Every source is checked on its own first, so an unknown key or a wrong type names the source it
came from (the file, `--set` or `preset NAME`).

Types come from the dataclass annotations in `schema.py`, so a new field needs no loader change.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import tomllib
import types
import typing
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from acetune.atomic import write_text_atomic
from acetune.config.fields import closest_choice
from acetune.config.files import dumps_json, dumps_toml, load_config_file, toml_value
from acetune.config.migrations import MIGRATIONS, migrate
from acetune.config.presets import adapt_preset, load_preset_data, strip_description
from acetune.config.schema import PreprocessConfig, RunConfig
from acetune.config.validation import validate
from acetune.errors import ConfigError, echoed

__all__ = [
    "MIGRATIONS", "apply_overrides", "checked_preprocess", "config_deltas", "config_layer", "config_diff",
    "config_from_dict", "config_to_dict", "load_config_file", "merge_dicts", "migrate", "resolve_config", "validate",
    "write_config",
]


def config_from_dict(data: dict, *, source: str) -> RunConfig:
    """Build a `RunConfig` from nested dicts; missing fields keep their defaults, nothing else is accepted."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a table of settings, got {_describe(data)}")
    data = migrate(data, source=source)
    return _build(RunConfig, data, (), source)


def config_to_dict(config: Any) -> dict:
    """Plain nested dicts: Enums become their values, tuples become lists (`None` stays `None`)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_deltas(config: RunConfig, base: RunConfig | None = None) -> dict:
    """Only the fields of `config` that differ from `base` (the defaults), as nested dicts."""
    return _dict_delta(config_to_dict(config), config_to_dict(base or RunConfig()))


def write_config(config: RunConfig, path: Path | str) -> Path:
    """Write the whole config: TOML when the suffix is .toml, otherwise JSON (atomic)."""
    path = Path(path)
    data = config_to_dict(config)
    if path.suffix.lower() == ".toml":
        if _build(RunConfig, _drop_none(data), (), str(path)) != config:  # TOML has no null
            raise ConfigError("this config holds a null that TOML cannot store", path=path, fix="write it as .json")
        text = f"# acetune run config (config_version {config.config_version})\n" + dumps_toml(data, skip_none=True)
    else:
        text = dumps_json(data)
    write_text_atomic(path, text)
    return path


def config_diff(a: RunConfig, b: RunConfig) -> list[str]:
    """Readable lines for each field that differs, e.g. `adapter.rank: 64 -> 32`."""
    changed = _flat_diff(config_to_dict(a), config_to_dict(b))
    return [f"{key}: {_show(old)} -> {_show(new)}" for key, old, new in changed]


def merge_dicts(base: dict, *layers: dict) -> dict:
    """A new dict: each layer merged over the previous (tables key by key, other values replace)."""
    merged = copy.deepcopy(base)
    for layer in layers:
        _merge_into(merged, layer)
    return merged


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """A copy of `data` with `key.path=value` items set; values parse as TOML when they can, else stay strings."""
    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not all(part.strip() for part in parts):
            raise ConfigError(f"--set: malformed override {item!r}",
                              fix="write it as section.key=value, e.g. optim.lr=1e-4")
        parts = [part.strip() for part in parts]
        table = result
        for depth, part in enumerate(parts[:-1]):
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set: {'.'.join(parts[:depth + 1])} is a value, not a table, in {item!r}",
                                  fix="set the value itself, not a key inside it")
        table[parts[-1]] = _parse_value(raw.strip())
    return result


def config_layer(data: dict, *, source: str, allow_description: bool = True) -> dict:
    """One source's settings checked on their own: `description` dropped, migrated, keys and types checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a table of settings, got {_describe(data)}")
    layer = migrate(strip_description(data, source=source) if allow_description else data, source=source)
    config_from_dict(layer, source=source)  # names `source` in unknown-key and type errors
    return layer


def resolve_config(*, preset: str | None = None, files: list[Path] = (), overrides: list[str] = (),
                   presets_dir: Path | None = None, base: Path | None = None) -> RunConfig:
    """defaults < preset (adapted to the final adapter kind) < files (in order) < overrides, validated.

    With `base` (a run's own config.resolved.toml) that file replaces the defaults: a resume starts
    from the settings the run was made with, and only what the user gives on top can differ.
    """
    raw_preset = None
    if preset is not None:
        raw_preset = config_layer(load_preset_data(preset, folder=presets_dir), source=f"preset {preset}")
    layers = [config_layer(load_config_file(path), source=str(path)) for path in files]
    layers.append(config_layer(apply_overrides({}, list(overrides)), source="--set", allow_description=False))
    if raw_preset is not None:
        kind = config_from_dict(merge_dicts(raw_preset, *layers), source="merged config").adapter.kind
        layers.insert(0, adapt_preset(raw_preset, kind))
    start = config_to_dict(RunConfig() if base is None else config_from_dict(load_config_file(base), source=str(base)))
    config = config_from_dict(merge_dicts(start, *layers), source="merged config")
    validate(config)
    return config


def checked_preprocess(config: PreprocessConfig, *, source: str = "preprocess options") -> PreprocessConfig:
    """Options made in code checked as a config file is: choices given as text become their Enums, and a
    misspelt choice or an impossible value is a ConfigError naming `preprocess.<key>` and the closest choice."""
    run = config_from_dict({"preprocess": config_to_dict(config)}, source=source)
    validate(run)
    return run.preprocess


# ---- building dataclasses from annotations ----

@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, data: dict, prefix: tuple[str, ...], source: str) -> Any:
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [key for key in data if key not in names]
    if unknown:
        key = unknown[0]
        dotted = ".".join((*prefix, str(key)))
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"; did you mean {'.'.join((*prefix, close[0]))}?" if close else ""
        valid = ", ".join(names)
        raise ConfigError(f"{source}: unknown key {dotted}{hint}",
                          fix=f"valid keys{' in ' + '.'.join(prefix) if prefix else ''}: {valid}")
    hints = _hints(cls)
    kwargs = {key: _convert(value, hints[key], (*prefix, key), source) for key, value in data.items()}
    return cls(**kwargs)


def _convert(value: Any, tp: Any, key: tuple[str, ...], source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None) and _accepts(value, option):
                return _convert(value, option, key, source)
        raise _type_error(source, key, " or ".join(_name(o) for o in options), value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(source, key, _name(tp), value)
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(args) != len(value):
            raise ConfigError(f"{source}: {'.'.join(key)} needs {len(args)} values, got {len(value)} ({echoed(value)})",
                              fix=f"write it as a list of {len(args)}")
        return tuple(_convert(item, arg, (*key[:-1], f"{key[-1]}[{i}]"), source)
                     for i, (item, arg) in enumerate(zip(value, args)))
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise _type_error(source, key, _name(tp), value)
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _type_error(source, key, "a table", value)
        return _build(tp, value, key, source)
    if isinstance(tp, type) and issubclass(tp, Enum):
        if isinstance(value, tp):
            return value
        choices = [member.value for member in tp]
        if value in choices:
            return tp(value)
        close = closest_choice(value, [str(c) for c in choices])
        hint = f"; did you mean {close!r}?" if close else ""
        raise ConfigError(f"{source}: {'.'.join(key)} must be one of {', '.join(map(str, choices))}, "
                          f"got {_describe(value)}{hint}", fix=f"use one of: {', '.join(map(str, choices))}")
    if tp in (bool, int, float, str):
        if not _accepts(value, tp):
            raise _type_error(source, key, _name(tp), value)
        return float(value) if tp is float else value
    raise TypeError(f"config field {'.'.join(key)} has an annotation the loader does not support: {tp!r}")


def _accepts(value: Any, tp: Any) -> bool:
    """Whether `value` has the right shape for `tp` (used to pick the member of a union)."""
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if typing.get_origin(tp) is tuple:
        return isinstance(value, (list, tuple))
    if dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return isinstance(value, (tp, str))
    return True


def _type_error(source: str, key: tuple[str, ...], expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{source}: {'.'.join(key)} must be {expected}, got {_describe(value)}",
                       fix=f"write {'.'.join(key)} as {expected}")


def _name(tp: Any) -> str:
    if tp is type(None):
        return "null (unset)"
    if tp in (bool, int, float, str):
        return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}[tp]
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_name(args[0]).split(' ', 1)[1]}s"
        return f"a list of {len(args)} {_name(args[0]).split(' ', 1)[1]}s"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(str(member.value) for member in tp)
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(str(choice) for choice in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if value is None:
        return "null"
    return f"{echoed(value)} ({type(value).__name__})"


# ---- dict helpers ----

def _parse_value(raw: str) -> Any:
    try:
        parsed = tomllib.loads(f"value = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    return parsed["value"] if list(parsed) == ["value"] else raw


def _merge_into(target: dict, layer: dict) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _drop_none(data: dict) -> dict:
    return {k: _drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


def _dict_delta(data: dict, base: dict) -> dict:
    delta = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            inner = _dict_delta(value, base[key])
            if inner:
                delta[key] = inner
        elif key not in base or base[key] != value:
            delta[key] = value
    return delta


def _flat_diff(a: dict, b: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    lines = []
    for key in list(a) + [k for k in b if k not in a]:
        old, new = a.get(key), b.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            lines.extend(_flat_diff(old, new, f"{prefix}{key}."))
        elif old != new:
            lines.append((f"{prefix}{key}", old, new))
    return lines


def _show(value: Any) -> str:
    return "unset" if value is None else toml_value(value)
