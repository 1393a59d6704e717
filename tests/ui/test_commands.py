"""The command lines the pages build read, through the CLI's own parser, as the values the form held."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from acetune.cli.label_cmd import label_command
from acetune.errors import ConfigError
from acetune.ui.commands import label_args


def parsed(command, args: list[str]) -> dict:
    """The parameters the CLI command would run with (parsed, not run)."""
    app = typer.Typer()
    app.command()(command)
    return typer.main.get_command(app).make_context("acetune", args).params


def test_the_label_form_becomes_dataset_label_with_each_choice(tmp_path):
    songs, checkpoints = tmp_path / "my songs", tmp_path / "ckpt"
    args = label_args(songs, checkpoints, labellers=["lm", "whisper"], dry_run=True, overwrite=False)
    assert args[:2] == ["dataset", "label"]
    params = parsed(label_command, args[2:])
    assert (Path(params["folder"]), Path(params["checkpoint_dir"])) == (songs, checkpoints)
    assert tuple(params["with_"]) == ("lm", "whisper")
    assert (params["dry_run"], params["overwrite"], params["device"]) == (True, False, "auto")
    params = parsed(label_command, label_args(songs, checkpoints, labellers=["whisper"], dry_run=False,
                                              overwrite=True, device="cpu")[2:])
    assert tuple(params["with_"]) == ("whisper",)
    assert (params["dry_run"], params["overwrite"], params["device"]) == (False, True, "cpu")


def test_no_labeller_chosen_is_refused_not_the_clis_default(tmp_path):
    with pytest.raises(ConfigError, match="no labeller chosen") as caught:
        label_args(tmp_path, tmp_path, labellers=[], dry_run=True, overwrite=False)
    assert "lm" in caught.value.fix
