"""Config files on disk: read TOML or JSON into a dict, write a dict as TOML or JSON.

The TOML writer covers what configs hold: nested tables of booleans, integers, floats, strings
and arrays of those. TOML has no null, so `None` values are left out (`skip_none=True`) or refused.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from acetune.errors import ConfigError

SUFFIXES = (".toml", ".json")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def load_config_file(path: Path | str) -> dict:
    """Read a `.toml` or `.json` config file into a dict (a syntax error names the file and line)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"unsupported config file type {path.suffix or '(no suffix)'!r}", path=path,
                          fix="use a .toml or .json file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path, fix="check the path") from None
    except OSError as err:
        raise ConfigError(f"cannot read the config file: {err.strerror or err}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"the file is not UTF-8 text ({err.reason} at byte {err.start})", path=path,
                          fix="save the file as UTF-8") from None
    if suffix == ".toml":
        return parse_toml(text, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})", path=path,
                          fix="fix the JSON syntax at that position") from None
    if not isinstance(data, dict):
        raise ConfigError(f"a JSON config must be an object, got {type(data).__name__}", path=path,
                          fix='write the settings as {"optim": {"lr": 0.0001}, ...}')
    return data


def parse_toml(text: str, source: Path | str) -> dict:
    """Parse TOML text; `source` (a file or a name such as 'preset vram_8gb') appears in errors."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", path=source, fix="fix the TOML syntax at that line") from None


def dumps_toml(data: dict, *, skip_none: bool = False) -> str:
    """A TOML document for a dict of scalars, arrays and nested dicts (tables follow the scalars)."""
    lines: list[str] = []
    _emit_table(data, (), lines, skip_none)
    return "\n".join(lines).lstrip("\n") + "\n"


def dumps_json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def toml_value(value: Any) -> str:
    """One value in TOML syntax (also used to print values readably)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest text that reads back to the same float
    if isinstance(value, str):
        return '"' + "".join(_escape(ch) for ch in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\u{ord(ch):04x}"
    return ch


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_value(name)


def _emit_table(table: dict, prefix: tuple[str, ...], lines: list[str], skip_none: bool) -> None:
    tables = []
    for name, value in table.items():
        if not isinstance(name, str):
            raise TypeError(f"TOML keys are strings, got {name!r}")
        if isinstance(value, dict):
            tables.append((name, value))
        elif value is None:
            if not skip_none:
                raise ValueError(f"{'.'.join((*prefix, name))} is None, which TOML cannot hold")
        else:
            lines.append(f"{_key(name)} = {toml_value(value)}")
    for name, value in tables:
        path = (*prefix, name)
        lines.extend(["", "[" + ".".join(_key(part) for part in path) + "]"])
        _emit_table(value, path, lines, skip_none)
