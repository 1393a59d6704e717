"""The Preprocess page's options, generated from the config's `preprocess` section: a control per field, the
schema's defaults and help, changed values sent as `--set preprocess.key=value`, errors beside their field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr
import pytest
import typer

from acetune.cli.preprocess_cmd import preprocess_command
from acetune.config import PreprocessConfig, resolve_config
from acetune.config.fields import config_fields
from acetune.errors import ConfigError
from acetune.ui import preprocess_form
from acetune.ui.commands import preprocess_args
from acetune.ui.context import UiContext
from acetune.ui.field_errors import concerned_fields
from acetune.ui.pages import preprocess_page
from acetune.ui.roots import Roots

SECTION_KEYS = [f"preprocess.{f.name}" for f in dataclasses.fields(PreprocessConfig)]


def parsed(args: list[str]) -> dict:
    """The parameters `acetune preprocess` would run with (parsed, not run)."""
    app = typer.Typer()
    app.command()(preprocess_command)
    return typer.main.get_command(app).make_context("acetune", args).params


def built_page(root: Path) -> dict[str, gr.components.Component]:
    """The Preprocess page built as the app builds it; its components by elem id."""
    with gr.Blocks() as blocks:
        shared = {"songs_folder": gr.Textbox(), "tag": gr.Textbox(), "position": gr.Textbox(), "app_load": []}
        preprocess_page.build(UiContext.open(Roots.of([root])), shared)
    return {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}


def test_the_options_are_the_sections_fields_with_their_defaults_and_help():
    fields = preprocess_form.preprocess_fields()
    assert [f.key for f in fields] == SECTION_KEYS  # a field added to the section is on the page, in schema order
    defaults = PreprocessConfig()
    values = preprocess_form.default_values(fields)
    for f, value in zip(fields, values):
        default = getattr(defaults, f.info.name)
        assert value == (default.value if hasattr(default, "value") else default) and f.info.help
    kinds = {f.key: f.control for f in fields}
    assert kinds["preprocess.normalize"] == "choice" and kinds["preprocess.two_pass"] == "checkbox"
    assert kinds["preprocess.seed"] == "integer" and kinds["preprocess.max_duration_s"] == "number"
    assert dict(zip(SECTION_KEYS, fields))["preprocess.normalize"].choices == ("none", "peak", "lufs")


def test_the_page_has_a_control_and_an_error_note_per_field(tmp_path):
    page = built_page(tmp_path)
    helps = {info.key: info.help for info in config_fields()}
    for key in SECTION_KEYS:
        elem = "pre-cfg-" + key.replace(".", "-")
        control = page[elem]
        assert control.label == key and control.info == helps[key]
        assert elem + "-error" in page
    assert page["pre-cfg-preprocess-normalize"].value == "none"
    assert page["pre-cfg-preprocess-max_duration_s"].value == 240.0
    for kept in ("pre-songs", "pre-checkpoints", "pre-cache", "pre-start", "pre-rebuild", "pre-cache-error"):
        assert kept in page


def test_changed_values_reach_preprocess_as_set_overrides(tmp_path):
    fields = preprocess_form.preprocess_fields()
    values = preprocess_form.default_values(fields)
    assert preprocess_form.preprocess_overrides(fields, values) == ([], PreprocessConfig())
    changes = {"preprocess.max_duration_s": 60, "preprocess.normalize": "lufs", "preprocess.seed": 7.0,
               "preprocess.two_pass": True, "preprocess.device": "cpu"}
    values = [changes.get(f.key, value) for f, value in zip(fields, values)]
    overrides, chosen = preprocess_form.preprocess_overrides(fields, values)
    assert len(overrides) == len(changes)
    assert (chosen.max_duration_s, chosen.normalize.value, chosen.seed, chosen.two_pass, chosen.device) == \
        (60.0, "lufs", 7, True, "cpu")
    songs, checkpoints, cache = tmp_path / "songs", tmp_path / "ckpt", tmp_path / "my cache"
    args = preprocess_args(songs, checkpoints, cache, tag="", tag_position="prepend", rebuild=True,
                           overrides=overrides)
    assert args[0] == "preprocess" and args.count("--set") == len(changes)
    params = parsed(args[1:])
    assert (Path(params["audio_dir"]), Path(params["checkpoint_dir"]), Path(params["out"])) == (songs, checkpoints,
                                                                                               cache)
    assert params["rebuild"] is True and params["tag"] is None
    assert resolve_config(overrides=list(params["set_"])).preprocess == chosen  # what the child process runs with


def test_a_wrong_value_is_refused_beside_its_field():
    fields = preprocess_form.preprocess_fields()
    values = preprocess_form.default_values(fields)
    values[[f.key for f in fields].index("preprocess.chunk_s")] = -1
    with pytest.raises(ConfigError) as caught:
        preprocess_form.preprocess_overrides(fields, values)
    assert concerned_fields(caught.value, ["pre-songs", "pre-cache", *SECTION_KEYS]) == ["preprocess.chunk_s"]
