"""`AdapterConfig` to and from the JSON string stored in every saved adapter's metadata.

Saved adapters carry the exact config that made them, so loading rebuilds the same module set
and the trainer can compare it with a resumed run's config. Safetensors metadata values must
be strings, hence JSON.
"""

from __future__ import annotations

import json
from dataclasses import fields
from enum import Enum
from pathlib import Path

from acetune.config import AdapterConfig
from acetune.errors import ModelLoadError

_DEFAULTS = AdapterConfig()


def config_to_json(config: AdapterConfig) -> str:
    """Enums as their values, tuples as lists, keys sorted (stable bytes for equal configs)."""
    data = {}
    for item in fields(config):
        value = getattr(config, item.name)
        data[item.name] = value.value if isinstance(value, Enum) else list(value) if isinstance(value, tuple) else value
    return json.dumps(data, sort_keys=True)


def config_from_json(text: str, *, path: Path) -> AdapterConfig:
    """Parse what `config_to_json` wrote; unknown keys or wrong types are errors naming `path`.

    Field types come from the defaults (the schema's annotations are strings), which is enough
    for the closed set of types `AdapterConfig` uses: Enum, tuple of str, bool, int, float, str.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"the recorded adapter config is not valid JSON ({err})", path=path) from err
    if not isinstance(data, dict):
        raise ModelLoadError("the recorded adapter config is not a JSON object", path=path)
    known = {item.name for item in fields(AdapterConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ModelLoadError(f"the recorded adapter config has unknown keys {unknown}", path=path,
                             fix="this adapter was written by a newer acetune; upgrade acetune")
    values = {}
    for name, raw in data.items():
        try:
            values[name] = _coerce(getattr(_DEFAULTS, name), raw)
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"the recorded adapter config has a bad {name}: {raw!r} ({err})", path=path) from err
    return AdapterConfig(**values)


def _coerce(default: object, raw: object) -> object:
    if isinstance(default, Enum):
        return type(default)(raw)
    if isinstance(default, tuple):
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise TypeError("expected a list of strings")
        return tuple(raw)
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise TypeError("expected true or false")
        return raw
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise TypeError("expected a number")
        return float(raw)
    if isinstance(raw, bool) or not isinstance(raw, type(default)):
        raise TypeError(f"expected {type(default).__name__}")
    return raw


def read_json_object(path: Path, what: str = "adapter config") -> dict:
    """A JSON object from `path`; a damaged or non-object file is a ModelLoadError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"cannot read the {what} ({err})", path=path,
                             fix="copy the adapter folder again; the file is damaged") from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"the {what} is not a JSON object", path=path)
    return data
