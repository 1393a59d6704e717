"""Old flag spellings keep working as hidden aliases of the one current name per meaning."""

from __future__ import annotations

import pytest

from acetune.cli.aliases import OLD_SPELLINGS, with_current_spellings
from acetune.cli.app import app, main
from acetune.cli.command_tree import build_command, option_names
from acetune.cli.usage import command_at

TREE = build_command(app)
ALIASES = [(path, old, new) for path, table in OLD_SPELLINGS.items() for old, new in table.items()]


@pytest.mark.parametrize("path, old, new", ALIASES, ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_each_alias_names_a_current_option_and_is_hidden(path, old, new, capsys):
    command = command_at(TREE, path)
    assert new in option_names(command) and old not in option_names(command)
    assert main([*path, "--help"]) == 0
    assert old not in capsys.readouterr().out.replace(new, "")


def test_aliases_are_rewritten_only_as_options_of_their_command():
    argv = ["--output-dir", "runs/x", "--adapter=lokr", "--", "--output-dir"]
    assert with_current_spellings(argv, ("train",)) == ["--out", "runs/x", "--adapter-kind=lokr", "--",
                                                        "--output-dir"]
    assert with_current_spellings(["--adapter", "a"], ("generate",)) == ["--adapter", "a"]


def test_an_alias_reaches_the_command(tmp_path, capsys):
    """`merge --dtype` (old) and `--save-dtype` (new) give the same named error for the same bad adapter."""
    base = ["merge", "--adapter", str(tmp_path / "missing"), "--checkpoint-dir", str(tmp_path), "--out",
            str(tmp_path / "o")]
    assert main([*base, "--dtype", "bf16"]) == 2
    old = capsys.readouterr().err
    assert main([*base, "--save-dtype", "bf16"]) == 2
    assert capsys.readouterr().err == old and "no such adapter" in old
