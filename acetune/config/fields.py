"""Every leaf field of `RunConfig` as data (dotted key, type, default, help), for front ends that list them.

Command-line flags, the web app's forms and error hints read the schema through this one view, so
a field added to `schema.py` reaches all of them without front-end code.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from acetune.config.schema import RunConfig
from acetune.errors import ConfigError


@dataclass(frozen=True)
class FieldInfo:
    key: str  # "adapter.rank"
    type: Any  # the annotation, e.g. int, `str | None`, an Enum, `tuple[str, ...]`
    default: Any
    help: str

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]


@cache
def config_fields() -> tuple[FieldInfo, ...]:
    """The leaf fields in declaration order (sections are not fields; `config_version` is left out)."""
    return tuple(_leaves(RunConfig, RunConfig(), ""))


def field_info(key: str) -> FieldInfo:
    """The field at a dotted key; an unknown key is a ConfigError naming the closest one."""
    by_key = {f.key: f for f in config_fields()}
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=1)
    raise ConfigError(f"no config field {key!r}" + (f"; did you mean {close[0]}?" if close else ""),
                      fix="see `acetune presets show recommended` for every field")


def closest_choice(value: object, choices: list[str]) -> str | None:
    """The choice a misspelt value most likely means: one it begins (`zero` -> `zero-frame`), else the closest."""
    text = str(value)
    starts = [choice for choice in choices if text and choice.startswith(text)]
    close = starts or difflib.get_close_matches(text, choices, n=1)
    return close[0] if close else None


def fields_named(name: str) -> list[FieldInfo]:
    """Fields whose last part is `name` (a flag `--warmup-steps` names `schedule.warmup_steps`)."""
    return [f for f in config_fields() if f.name == name]


def _leaves(cls: type, instance: Any, prefix: str):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(type(value), value, f"{key}.")
        elif key != "config_version":
            yield FieldInfo(key, hints[f.name], value, f.metadata.get("help", ""))
