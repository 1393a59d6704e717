"""Errors beside their field: which field an error concerns, and the notes a guarded handler shows and hides."""

from __future__ import annotations

import gradio as gr
import pytest

from acetune.errors import ConfigError
from acetune.ui import OutsideRootsError, Roots, train_form
from acetune.ui.field_errors import concerned_fields, keys_named
from acetune.ui.pages.common import FieldNotes, guarded

FIELDS = train_form.form_fields()
KEYS = [f.key for f in FIELDS]


def config_error(**changes) -> ConfigError:
    """The error the Train form gets for these values (as the page builds the config)."""
    values = train_form.preset_values("quick_test", FIELDS)
    for key, value in changes.items():
        values[KEYS.index(key.replace("__", "."))] = value
    with pytest.raises(ConfigError) as caught:
        train_form.build_config("quick_test", FIELDS, values)
    return caught.value


def test_a_config_error_names_the_field_it_concerns():
    assert concerned_fields(config_error(data__batch_size=0), KEYS) == ["data.batch_size"]  # validation
    assert concerned_fields(config_error(optim__betas='[0.9, "x"]'), KEYS) == ["optim.betas"]  # optim.betas[1]
    assert concerned_fields(config_error(optim__betas="[0.9]"), KEYS) == ["optim.betas"]  # needs 2 values
    two = config_error(data__batch_size=0, optim__lr=-1.0)  # "2 impossible values": each beside its field
    assert sorted(concerned_fields(two, KEYS)) == ["data.batch_size", "optim.lr"]


def test_a_table_stands_for_its_fields_and_the_fix_is_read_when_the_words_name_none():
    mix = [k for k in KEYS if k.startswith("objective.task_mix.")]
    assert mix and keys_named("objective.task_mix = all 0 gives a mixed run no task to train", KEYS) == mix
    error = ConfigError("no cache folder chosen", fix="preprocess your songs, then put the cache folder in data.cache")
    assert concerned_fields(error, KEYS) == ["data.cache"]
    assert keys_named("/tmp/run.toml: see e.g. the docs, or data.batch_sizes", KEYS) == []  # no such keys


def test_a_path_check_names_its_field(tmp_path):
    roots = Roots.of([tmp_path])
    for path, must_exist in (("/", False), ("missing", True), ("", False)):
        with pytest.raises(OutsideRootsError) as caught:
            roots.check(path, must_exist=must_exist, field="pre-cache")
        assert concerned_fields(caught.value, ["pre-songs", "pre-cache"]) == ["pre-cache"]
        assert concerned_fields(caught.value, ["pre-songs"]) == []  # a field this page does not have


def test_a_guarded_handler_shows_the_error_beside_its_field_and_a_success_hides_it(tmp_path):
    roots = Roots.of([tmp_path])
    with gr.Blocks():
        notes = FieldNotes("cfg-")
        for key in ("data.cache", "data.batch_size"):
            notes.under(key)
    assert [n.elem_id for n in notes.outputs] == ["cfg-data-cache-error", "cfg-data-batch_size-error"]

    @guarded(2, notes)
    def handler(path):
        return "result", str(roots.check(path, field="data.cache"))

    *kept, status, cache_note, batch_note = handler("/")
    assert kept == [gr.skip()] and status.startswith("error: /: is outside the folders") and "fix: " in status
    assert cache_note["visible"] and "error: /: is outside" in cache_note["value"] and not batch_note["visible"]
    assert 'class="field-error"' in cache_note["value"]
    assert handler("songs") == ("result", str(tmp_path / "songs"), gr.update(visible=False),
                                gr.update(visible=False))
