"""Every usage mistake on every command is `error:` + `fix:`, exit 2, no traceback; help shows no Python types.

Parametrized over the live command tree, so a new command or option is covered without a new test.
The mistakes are all caught while parsing, before a command does any work.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.core import TyperArgument

from acetune.cli.app import app, main
from acetune.cli.command_tree import build_command, iter_commands, value_label

TREE = build_command(app)
GROUPS = [path for path, command in iter_commands(TREE) if hasattr(command, "commands")]
COMMANDS = [(path, command) for path, command in iter_commands(TREE) if not hasattr(command, "commands")]
OPTIONS = [(path, param) for path, command in COMMANDS for param in command.params
           if not isinstance(param, TyperArgument) and not param.is_flag]
TYPED = [(path, param) for path, param in OPTIONS if value_label(param) in ("INTEGER", "NUMBER")
         or "|" in value_label(param)]
ids = lambda item: " ".join(item[0]) + (f" {item[1].opts[0]}" if len(item) > 1 and hasattr(item[1], "opts")  # noqa: E731
                                        else "")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_named_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and "\n  fix: " in err, err
    assert "Traceback" not in err and "typer" not in err and "click" not in err, err
    fix = err.split("fix: ", 1)[1]
    assert not re.search(r"\w=(True|False|None)\b", fix), fix  # what the user types, never Python


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_an_unknown_option_names_the_command_and_a_fix(path, capsys):
    code, _, err = run([*path, "--no-such-option"], capsys)
    assert_named_error(code, err)
    assert f"{' '.join(['acetune', *path])} has no option --no-such-option" in err


@pytest.mark.parametrize("item", OPTIONS, ids=ids)
def test_an_option_without_its_value_is_named(item, capsys):
    path, param = item
    code, _, err = run([*path, param.opts[0]], capsys)
    assert_named_error(code, err)
    assert param.opts[0] in err or max(param.opts, key=len) in err


@pytest.mark.parametrize("item", TYPED, ids=ids)
def test_a_malformed_value_says_what_the_option_takes(item, capsys):
    path, param = item
    code, _, err = run([*path, param.opts[0], "notavalue"], capsys)
    assert_named_error(code, err)


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(["acetune", *p]))
def test_an_unknown_command_gets_the_closest_one(path, capsys):
    command = TREE
    for name in path:
        command = command.commands[name]
    first = next(iter(command.commands))
    code, _, err = run([*path, first[:-1] + "x"], capsys)
    assert_named_error(code, err)
    assert f"`{' '.join(['acetune', *path, first])}`" in err


@pytest.mark.parametrize("path", [p for p, _ in iter_commands(TREE)], ids=lambda p: " ".join(["acetune", *p]))
def test_help_shows_no_python_types(path, capsys):
    code, out, _ = run([*path, "--help"], capsys)
    assert code == 0
    assert "Usage: acetune" in out
    assert not re.search(r"<(bool|int|float|str|path|list)", out, flags=re.IGNORECASE), out


def test_typical_mistakes_read_as_the_readme_promises(capsys):
    cases = {
        ("train", "--rnk", "64"): "did you mean --rank?",
        ("train", "--warmup-steps", "5"): "--set schedule.warmup_steps=VALUE",
        ("preprocess", "--audio-dir"): "write --audio-dir PATH",
        ("generate", "--steps", "notanumber"): "--steps 'notanumber' is not a whole number",
        ("nosuchcommand",): "acetune has no command 'nosuchcommand'",
        ("generate", "--checkpoint-dir", "x"): "acetune generate needs --caption",
        ("train", "--precision", "fp33"): "did you mean fp32?",
    }
    for args, expected in cases.items():
        code, _, err = run(list(args), capsys)
        assert_named_error(code, err)
        assert expected in err, (args, err)


def test_no_arguments_prints_help_and_succeeds(capsys):
    code, out, _ = run([], capsys)
    assert code == 0 and "Usage: acetune" in out
    code, out, _ = run(["dataset"], capsys)
    assert code == 0 and "Usage: acetune dataset" in out


def test_help_of_every_command_starts_without_torch():
    """`acetune --help` must stay fast: no command imports torch (or the audio stack) before it runs."""
    paths = [list(p) for p, _ in iter_commands(TREE)]
    script = ("import sys, contextlib, io\nfrom acetune.cli.app import main\n"
              f"for path in {paths!r}:\n"
              "    with contextlib.redirect_stdout(io.StringIO()):\n"
              "        assert main([*path, '--help']) == 0, path\n"
              "heavy = sorted(m for m in ('torch', 'numpy', 'av', 'soundfile', 'transformers') if m in sys.modules)\n"
              "print(heavy)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
