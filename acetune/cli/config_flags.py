"""First-class command-line flags for config fields: type and help come from the schema, values become overrides.

A command lists the fields users set most (`--rank` is `adapter.rank`); everything else stays
reachable through `--set`. No flag declares its own type or help text, so the flag and the config
field cannot drift apart, and each value enters the one typed config exactly as `--set` would.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

import typer

from acetune.config.fields import FieldInfo, field_info
from acetune.config.files import toml_value


@dataclass(frozen=True)
class ConfigFlag:
    flag: str  # "--rank"
    key: str  # "adapter.rank"
    metavar: str | None = None  # how the value looks in --help (default: from its type)

    @property
    def parameter(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def flag_type(info: FieldInfo) -> type:
    """The command-line type of a field: its own scalar type or Enum (optional text for `str | None`)."""
    if isinstance(info.type, type) and issubclass(info.type, (bool, int, float, str, Enum)):
        return info.type
    if str(info.type) in ("str | None", "typing.Optional[str]"):
        return str
    raise TypeError(f"config field {info.key} ({info.type}) has no command-line form: use --set")


def with_config_flags(flags: tuple[ConfigFlag, ...]) -> Callable:
    """Append one option per flag to a command; the command gets `config_overrides: list[str]` (`key=value`)."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != "config_overrides"]
        added = [_parameter(flag) for flag in flags]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            given = {flag.key: kwargs.pop(flag.parameter) for flag in flags}
            overrides = [f"{key}={toml_value(_plain(value))}" for key, value in given.items() if value is not None]
            return command(**kwargs, config_overrides=overrides)

        wrapper.__signature__ = signature.replace(parameters=[*added, *own])  # what typer reads
        return wrapper

    return decorate


def _parameter(flag: ConfigFlag) -> inspect.Parameter:
    info = field_info(flag.key)
    kind = flag_type(info)
    names = [f"{flag.flag}/--no-{flag.flag[2:]}"] if kind is bool else [flag.flag]
    option = typer.Option(None, *names, help=f"{info.help} ({flag.key}).",
                          metavar=flag.metavar, show_default=False)
    return inspect.Parameter(flag.parameter, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option,
                             annotation=kind | None)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
