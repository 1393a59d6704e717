"""The Songs page's functions over the dataset API, and the Train form generated from the config schema."""

from __future__ import annotations

import json

import pytest

from acetune.audio import synthesize_song, write_audio
from acetune.config import resolve_config
from acetune.config.fields import config_fields
from acetune.errors import ConfigError, LabelError
from acetune.ui import songs, train_form


@pytest.fixture()
def folder(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        write_audio(tmp_path / name, synthesize_song(seed=0, duration_s=1.0, bpm=100, key="C major"), 48000)
    (tmp_path / "a.json").write_text(json.dumps({"caption": "warm pads", "mood": "calm", "bpm": 100}))
    (tmp_path / "b.caption.txt").write_text("from a text file")
    (tmp_path / "c.json").write_text("{broken")
    return tmp_path


def test_the_table_lists_labels_sources_and_problems(folder):
    table = songs.song_table(folder)
    rows = {row[0]: dict(zip(songs.HEADERS, row)) for row in table.rows}
    assert rows["a.wav"]["caption"] == "warm pads" and rows["a.wav"]["bpm"] == "100"
    assert rows["a.wav"]["label sources"] == "a.json" and rows["b.wav"]["label sources"] == "b.caption.txt"
    assert rows["c.wav"]["problem"].startswith("skipped: ") and "not valid JSON" in rows["c.wav"]["problem"]
    assert table.files == ["a.wav", "b.wav"]


def test_the_table_names_the_auto_labeller_of_each_field(folder):
    """`acetune dataset label` records field -> labeller in song.json; the page shows it beside the files."""
    (folder / "a.json").write_text(json.dumps({"caption": "warm pads", "genre": "ambient", "label_sources": {
        "caption": "lm:acestep-5Hz-lm-1.7B", "genre": "lm:acestep-5Hz-lm-1.7B"}}))
    rows = {row[0]: dict(zip(songs.HEADERS, row)) for row in songs.song_table(folder).rows}
    assert rows["a.wav"]["auto-labelled"] == "caption: lm:acestep-5Hz-lm-1.7B, genre: lm:acestep-5Hz-lm-1.7B"
    assert rows["b.wav"]["auto-labelled"] == "" and rows["c.wav"]["auto-labelled"] == ""


def test_an_edit_writes_song_json_and_keeps_unknown_keys(folder):
    values = {key: "" for key in songs.EDITABLE}
    values.update(caption="bright keys", bpm="120", language="en")
    written = songs.save_song(folder, "a.wav", values)
    assert json.loads(written.read_text()) == {"caption": "bright keys", "bpm": 120, "language": "en",
                                               "mood": "calm"}
    untouched = {**values, "caption": "from a text file", "bpm": "", "language": ""}
    songs.save_song(folder, "b.wav", untouched)  # nothing changed: the text file's caption is not copied
    assert not (folder / "b.json").exists()
    with pytest.raises(LabelError) as caught:
        songs.save_song(folder, "a.wav", {**values, "bpm": "fast"})
    assert caught.value.path == folder / "a.json"
    assert json.loads((folder / "a.json").read_text())["bpm"] == 120  # a refused edit leaves the file as it was


def test_the_preview_is_the_cached_prompt_with_the_tag(folder):
    text = songs.prompt_preview(folder, "a.wav", "mytag", "prepend")
    assert "mytag, warm pads" in text and "- bpm: 100" in text and "[Instrumental]" in text
    assert "warm pads, mytag" in songs.prompt_preview(folder, "a.wav", "mytag", "append")


def test_every_config_field_is_on_the_form():
    fields = train_form.form_fields()
    trained = [info.key for info in config_fields() if not info.key.startswith("preprocess.")]
    assert sorted(f.key for f in fields) == sorted(trained)
    assert [f.key for f in fields[:len(train_form.COMMON)]] == list(train_form.COMMON)
    controls = {f.key: f.control for f in fields}
    assert controls["adapter.kind"] == "choice" and controls["log.tensorboard"] == "checkbox"
    assert controls["adapter.rank"] == "integer" and controls["optim.betas"] == "toml"


def test_form_values_become_the_presets_config_with_the_changes(tmp_path):
    fields = train_form.form_fields()
    values = train_form.preset_values("quick_test", fields)
    assert train_form.build_config("quick_test", fields, values) == resolve_config(preset="quick_test")
    keys = [f.key for f in fields]
    values[keys.index("adapter.rank")] = 8
    values[keys.index("optim.betas")] = "[0.8, 0.95]"
    values[keys.index("adapter.kind")] = "lokr"
    config = train_form.build_config("quick_test", fields, values)
    assert (config.adapter.rank, config.optim.betas, config.adapter.kind.value) == (8, (0.8, 0.95), "lokr")
    assert config == resolve_config(preset="quick_test", overrides=["adapter.rank=8", "optim.betas=[0.8, 0.95]",
                                                                     'adapter.kind="lokr"'])
    file = train_form.write_run_config(config, tmp_path, "run")
    assert resolve_config(files=[file]) == config
    values[keys.index("data.batch_size")] = 0
    with pytest.raises(ConfigError, match="batch_size"):
        train_form.build_config("quick_test", fields, values)


def test_a_preset_sets_only_what_it_declares_and_keeps_what_the_user_typed():
    """Choosing a preset once reset the checkpoints folder (and every other field) to the preset's values."""
    fields = train_form.form_fields()
    keys = [f.key for f in fields]
    values = train_form.preset_values("quick_test", fields)
    values[keys.index("data.checkpoint_dir")] = "/models/ace"  # typed by the user; no preset declares it
    values[keys.index("data.cache")] = "cache"
    values[keys.index("loop.max_steps")] = 7
    assert "adapter.rank" in train_form.preset_keys("high_quality")
    assert "data.checkpoint_dir" not in train_form.preset_keys("high_quality")
    changed = train_form.switched_values("quick_test", "high_quality", fields, values)
    assert not {"data.checkpoint_dir", "data.cache", "loop.max_steps"} & set(changed)
    target = train_form.preset_values("high_quality", fields)
    for key, value in changed.items():
        values[keys.index(key)] = value
    config = train_form.build_config("high_quality", fields, values)
    assert (config.data.checkpoint_dir, config.data.cache, config.loop.max_steps) == ("/models/ace", "cache", 7)
    for key in ("adapter.rank", "optim.lr", "data.crop_frames", "save.save_every"):  # the rest is the new preset's
        assert values[keys.index(key)] == target[keys.index(key)], key
