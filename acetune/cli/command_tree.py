"""The click command tree behind the typer app, with help that shows what a user types, not Python types.

typer labels each value with its annotation (`<int>`, `<list[Path]>`, `<bool>`); here every option
and argument gets a plain label instead (`INTEGER`, `PATH`, `auto|fp32|bf16|fp16`, nothing for an
on/off flag). Built once per process from the typer app; tests walk the same tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup

_LABELS = {int: "INTEGER", float: "NUMBER", str: "TEXT", Path: "PATH"}


class _LabelledArgument(TyperArgument):
    """An argument whose help row shows its label (typer shows the annotation, ignoring the metavar)."""

    def display_type_rich(self, ctx: Any) -> str | None:  # noqa: ARG002 - typer's signature
        return None  # the name column already says it: FOLDER, FILE, ...


def build_command(app: typer.Typer) -> TyperGroup:
    """The app's click group with every parameter relabelled."""
    group = typer.main.get_command(app)
    for _, command in iter_commands(group):
        help_option = command.get_help_option(typer.Context(command))  # made (and cached) on first use
        for param in [*command.params, *([help_option] if help_option is not None else [])]:
            relabel(param)
    return group


def iter_commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) for the group itself and every command and subgroup below it, in help order."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from iter_commands(command, (*path, name))


def relabel(param: Any) -> None:
    if isinstance(param, TyperArgument):
        if param.metavar is None:
            param.metavar = param.name.upper()
        param.__class__ = _LabelledArgument
        return
    if param.metavar is None:
        param.metavar = "" if param.is_flag else value_label(param)


def value_label(param: Any) -> str:
    """What a value of this parameter looks like: INTEGER, NUMBER, TEXT, PATH, or its choices."""
    annotation = param.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "|".join(str(member.value) for member in annotation)
    origin = getattr(annotation, "__origin__", None)
    if origin in (list, tuple):
        annotation = annotation.__args__[0]
    for kind, label in _LABELS.items():
        if isinstance(annotation, type) and issubclass(annotation, kind):
            return label
    return "VALUE"


def option_names(command: Any) -> list[str]:
    """Every spelling the command's options accept (`--overwrite`, `--no-overwrite`, `-c`, ...)."""
    return [name for param in command.params if not isinstance(param, TyperArgument)
            for name in (*param.opts, *param.secondary_opts)]
