"""Command-line mistakes as `error:` + `fix:` in the user's own words: no traceback, no Python, exit code 2.

typer raises its own (click's) exceptions for an unknown option, a missing or malformed value and
a missing argument; `explain` turns each into a `UsageError` whose fix names what to type instead:
the closest option, the `--set` key of a config field, the value's form or the valid choices.
Unknown commands are caught before parsing (`check_command_path`), with the closest command.
"""

from __future__ import annotations

import difflib
from typing import Any

from typer.core import TyperArgument

from acetune.cli.command_tree import option_names, value_label
from acetune.config.fields import closest_choice, config_fields, fields_named
from acetune.errors import UsageError

_FORMS = {"INTEGER": "a whole number", "NUMBER": "a number", "TEXT": "text", "PATH": "a path"}


def check_command_path(argv: list[str], group: Any) -> tuple[str, ...]:
    """The command path at the start of `argv` (e.g. ("dataset", "edit")); an unknown command is refused."""
    path: list[str] = []
    command = group
    for token in argv:
        commands = getattr(command, "commands", None)
        if not commands or token.startswith("-"):
            break
        if token not in commands:
            where = " ".join(["acetune", *path])
            close = difflib.get_close_matches(token, list(commands), n=1)
            hint = f"did you mean `{where} {close[0]}`? " if close else ""
            raise UsageError(f"{where} has no command {token!r}",
                             fix=f"{hint}commands: {', '.join(commands)} (`{where} --help`)")
        path.append(token)
        command = commands[token]
    return tuple(path)


def explain(err: Exception, group: Any, path: tuple[str, ...]) -> UsageError:
    """A typer/click usage exception as a UsageError naming the option and what to type.

    `path` is the command the user named (some exceptions carry no context of their own)."""
    ctx = getattr(err, "ctx", None)
    command = getattr(ctx, "command", None) or command_at(group, path)
    where = getattr(ctx, "command_path", None) or " ".join(["acetune", *path])
    name = type(err).__name__
    if name == "NoSuchOption":
        return _unknown_option(err.option_name, command, where)
    param = getattr(err, "param", None) or _param_named(command, getattr(err, "option_name", None))
    if name == "MissingParameter" and param is not None:
        return UsageError(f"{where} needs {_shown(param)}", fix=f"add {_example(param)} (`{where} --help`)")
    if name == "BadOptionUsage" and param is not None:
        return UsageError(f"{_shown(param)} needs a value", fix=f"write {_example(param)} (`{where} --help`)")
    if name == "BadParameter" and param is not None:
        return _bad_value(err, param, where)
    message = getattr(err, "message", str(err)).strip().rstrip(".")
    return UsageError(message[:1].lower() + message[1:], fix=f"see `{where} --help`")


def command_at(group: Any, path: tuple[str, ...]) -> Any:
    command = group
    for name in path:
        command = command.commands[name]
    return command


def _unknown_option(option: str, command: Any, where: str) -> UsageError:
    """The closest option; for a command that takes --set, a config field of that name first."""
    names = option_names(command) if command is not None else []
    error = f"{where} has no option {option}"
    field = _config_field(option) if "--set" in names else None
    close = difflib.get_close_matches(option, names, n=1, cutoff=0.6)
    if field is not None and (field.name == option.lstrip("-").replace("-", "_") or not close):
        return UsageError(error, fix=f"set the config field with --set {field.key}=VALUE (`{where} --help`)")
    if close:
        return UsageError(error, fix=f"did you mean {close[0]}? (`{where} --help`)")
    return UsageError(error, fix=f"see `{where} --help` for its options")


def _config_field(option: str):
    """The config field an option name means: its last part exactly, else the closest dotted key."""
    name = option.lstrip("-").replace("-", "_")
    exact = fields_named(name)
    if exact:
        return exact[0]
    by_key = {f.key: f for f in config_fields()}
    close = difflib.get_close_matches(name, list(by_key), n=1)
    return by_key[close[0]] if close else None


def _bad_value(err: Exception, param: Any, where: str) -> UsageError:
    value = _raw_input(err)
    label = value_label(param)
    shown = _shown(param)
    given = f" {value!r}" if value is not None else ""
    if "|" in label:
        choices = label.split("|")
        close = closest_choice(value, choices) if value is not None else None
        hint = f"did you mean {close}? " if close else ""
        return UsageError(f"{shown}{given} is not one of {', '.join(choices)}",
                          fix=f"{hint}write e.g. {shown} {close or choices[0]}")
    if label in _FORMS:
        return UsageError(f"{shown}{given} is not {_FORMS[label]}", fix=f"write {_example(param)} (`{where} --help`)")
    message = getattr(err, "message", str(err)).strip().rstrip(".")
    return UsageError(f"{shown}{given}: {message}", fix=f"see `{where} --help`")


def _raw_input(err: Exception) -> Any:
    """The value the user typed, when typer kept it (the pydantic error it wraps holds it)."""
    cause = err.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            return errors()[0].get("input")
        except (IndexError, TypeError, AttributeError):
            return None
    return None


def _param_named(command: Any, option: str | None) -> Any:
    if command is None or option is None:
        return None
    return next((p for p in command.params if option in (*p.opts, *p.secondary_opts)), None)


def _shown(param: Any) -> str:
    """How the user writes the parameter: --caption, or FOLDER for an argument."""
    if isinstance(param, TyperArgument):
        return param.metavar or param.name.upper()
    return max(param.opts, key=len)


def _example(param: Any) -> str:
    if isinstance(param, TyperArgument):
        return param.metavar or param.name.upper()
    label = param.metavar if param.metavar else value_label(param)
    return f"{_shown(param)} {label}".rstrip()
