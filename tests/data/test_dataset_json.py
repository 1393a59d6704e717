"""Dataset JSON (ACE-Step app / Side-Step): import forms, audio lookup, unknown keys, export, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acetune.data.dataset import TagConfig, scan_dataset
from acetune.data.dataset_json import (
    dataset_to_json,
    import_dataset_json,
    read_dataset_json,
    sample_id,
    write_dataset_json,
)
from acetune.errors import LabelError


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _app_json(folder: Path) -> dict:
    return {
        "metadata": {"name": "mine", "custom_tag": "zx", "tag_position": "append", "created_at": "2026-01-02T03:04:05",
                     "num_samples": 2, "all_instrumental": False, "genre_ratio": 30, "builder": "app 1.5"},
        "samples": [
            {"id": "deadbeef", "audio_path": "songs/a.wav", "filename": "a.wav", "caption": "warm", "genre": "pop",
             "lyrics": "[Verse]\nhi", "raw_lyrics": "hi", "formatted_lyrics": "[Verse]\nhi", "bpm": 120,
             "keyscale": "C major", "timesignature": "4", "duration": 181, "language": "en",
             "is_instrumental": False, "custom_tag": "", "labeled": True, "prompt_override": None, "rating": 4},
            {"id": "cafebabe", "audio_path": "/nowhere/else/b.flac", "filename": "songs/b.flac",
             "caption": "", "genre": "", "lyrics": "[Instrumental]", "bpm": None, "keyscale": "",
             "timesignature": "", "duration": 60, "language": "unknown", "is_instrumental": True,
             "custom_tag": "own", "labeled": False, "prompt_override": "genre"},
        ],
    }


@pytest.fixture()
def app_folder(tmp_path) -> Path:
    _touch(tmp_path / "songs" / "a.wav")
    _touch(tmp_path / "songs" / "b.flac")
    _touch(tmp_path / "dataset.json", json.dumps(_app_json(tmp_path)))
    return tmp_path


def test_import_app_format(app_folder):
    result = read_dataset_json(app_folder / "dataset.json")
    dataset = result.dataset
    assert result.problems == []
    assert (dataset.tag, dataset.genre_ratio) == (TagConfig("zx", "append"), 30)
    assert dataset.metadata == {"name": "mine", "created_at": "2026-01-02T03:04:05", "builder": "app 1.5"}
    a, b = dataset.samples
    assert (a.relative, b.relative) == ("songs/a.wav", "songs/b.flac")  # b: audio_path missing -> filename
    assert (a.labels.bpm, a.labels.duration, a.labels.timesignature) == (120, 181, "4")
    assert a.labels.extra == {"raw_lyrics": "hi", "formatted_lyrics": "[Verse]\nhi", "labeled": True, "rating": 4}
    assert (b.labels.prompt_override, b.labels.custom_tag, b.labels.keyscale) == ("genre", "own", None)


def test_round_trip_keeps_values_and_unknown_keys(app_folder, tmp_path):
    first = read_dataset_json(app_folder / "dataset.json").dataset
    out = write_dataset_json(first, tmp_path / "out" / "again.json")
    data = json.loads(out.read_text())
    again = read_dataset_json(out).dataset
    assert [s.labels for s in again.samples] == [s.labels for s in first.samples]
    assert [s.audio_path for s in again.samples] == [s.audio_path for s in first.samples]
    assert (again.tag, again.genre_ratio, again.metadata) == (first.tag, first.genre_ratio, first.metadata)
    meta = data["metadata"]
    assert (meta["num_samples"], meta["all_instrumental"], meta["builder"]) == (2, False, "app 1.5")
    sample = data["samples"][0]
    assert sample["id"] == sample_id("songs/a.wav") and len(sample["id"]) == 8
    assert sample["audio_path"] == str((app_folder / "songs" / "a.wav").resolve())
    assert (sample["filename"], sample["rating"], sample["raw_lyrics"]) == ("a.wav", 4, "hi")
    assert [s["custom_tag"] for s in data["samples"]] == ["zx", "own"]  # the dataset tag unless a song has its own


def test_export_writes_the_trigger_word_into_every_sample(tmp_path):
    _touch(tmp_path / "s" / "a.wav")
    _touch(tmp_path / "s" / "b.wav")
    _touch(tmp_path / "s" / "b.json", json.dumps({"caption": "c", "custom_tag": "mine", "filename": "old.wav"}))
    data = dataset_to_json(scan_dataset(tmp_path / "s", tag=TagConfig("zx-style")).dataset)
    assert [(s["filename"], s["custom_tag"]) for s in data["samples"]] == [("a.wav", "zx-style"), ("b.wav", "mine")]
    assert data["metadata"]["custom_tag"] == "zx-style"
    untagged = dataset_to_json(scan_dataset(tmp_path / "s").dataset)
    assert [s["custom_tag"] for s in untagged["samples"]] == ["", "mine"]


def test_import_reads_the_dataset_tag_in_a_sample_as_the_datasets(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "b.wav")
    _touch(tmp_path / "d.json", json.dumps({"metadata": {"custom_tag": "zx"}, "samples": [
        {"filename": "a.wav", "custom_tag": "zx", "language": "Japanese"},
        {"filename": "b.wav", "custom_tag": "own", "language": "Elvish"}]}))
    result = read_dataset_json(tmp_path / "d.json")
    assert [s.labels.custom_tag for s in result.dataset.samples] == ["", "own"]
    assert [s.labels.language for s in result.dataset.samples] == ["ja", "unknown"]
    assert result.problems == [] and len(result.notices) == 1
    assert result.notices[0].text.startswith("sample 2: language 'Elvish' is not an ACE-Step language code")


def test_samples_only_and_bare_list(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "only.json", json.dumps({"samples": [{"filename": "a.wav", "caption": "x"}]}))
    _touch(tmp_path / "bare.json", json.dumps([{"audio_path": "a.wav", "bpm": "90"}]))
    only = read_dataset_json(tmp_path / "only.json").dataset
    assert only.samples[0].labels.caption == "x" and only.tag == TagConfig()
    assert read_dataset_json(tmp_path / "bare.json").dataset.samples[0].labels.bpm == 90


def test_missing_audio_and_bad_labels_are_problems(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "d.json", json.dumps([{"filename": "gone.wav"}, {"filename": "a.wav", "bpm": "x"},
                                            {"filename": "a.wav"}, {"filename": "a.wav"}]))
    result = read_dataset_json(tmp_path / "d.json")
    assert len(result.dataset.samples) == 1
    reasons = [p.reason for p in result.problems]
    assert "sample 1 skipped: audio file 'gone.wav' not found" in reasons[0]
    assert reasons[1].startswith("sample 2 skipped: bpm must be a whole number")
    assert reasons[2].startswith("sample 4 skipped:") and "already sample 3" in reasons[2]
    assert all(p.path == tmp_path / "d.json" for p in result.problems)


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not valid JSON"),
    ('{"items": []}', "list of samples"),
    ('{"samples": [], "extra": 1}', "unknown top-level key"),
    ('{"samples": [1]}', "sample 1 is not an object"),
    ('{"metadata": {"genre_ratio": 150}, "samples": []}', "genre_ratio"),
    ('{"metadata": {"tag_position": "middle"}, "samples": []}', "tag_position"),
])
def test_malformed_documents(tmp_path, text, message):
    path = _touch(tmp_path / "d.json", text)
    with pytest.raises(LabelError, match=message) as err:
        read_dataset_json(path)
    assert str(path) in str(err.value)


def test_export_from_a_folder(tmp_path):
    _touch(tmp_path / "s" / "a.wav")
    _touch(tmp_path / "s" / "a.json", json.dumps({"caption": "c", "lyrics": "la"}))
    _touch(tmp_path / "s" / "b.wav")
    dataset = scan_dataset(tmp_path / "s", tag=TagConfig("zx", "replace"), genre_ratio=50).dataset
    data = dataset_to_json(dataset)
    assert data["metadata"]["name"] == "s" and data["metadata"]["tag_position"] == "replace"
    assert [(s["is_instrumental"], s["labeled"]) for s in data["samples"]] == [(False, True), (True, False)]
    out = write_dataset_json(dataset, tmp_path / "d.json")
    with pytest.raises(LabelError, match="already exists"):
        write_dataset_json(dataset, out)
    write_dataset_json(dataset, out, overwrite=True)


def test_import_into_a_folder_writes_sidecars_and_refuses_changes(app_folder, tmp_path):
    songs = app_folder / "songs"
    _touch(songs / "a.json", json.dumps({"caption": "user caption", "mine": True}))
    with pytest.raises(LabelError, match=r"a.wav: caption") as err:
        import_dataset_json(app_folder / "dataset.json", songs)
    assert "--overwrite" in str(err.value)
    assert json.loads((songs / "a.json").read_text()) == {"caption": "user caption", "mine": True}
    assert not (songs / "b.json").exists()  # nothing written when refusing
    report = import_dataset_json(app_folder / "dataset.json", songs, overwrite=True)
    assert sorted(p.name for p in report.written) == ["a.json", "b.json"]
    a = json.loads((songs / "a.json").read_text())
    assert (a["caption"], a["mine"], a["rating"], a["bpm"]) == ("warm", True, 4, 120)
    assert report.dataset.tag == TagConfig("zx", "append")


def test_import_writes_nothing_when_a_sidecar_it_would_merge_into_is_malformed(app_folder):
    songs = app_folder / "songs"
    _touch(songs / "b.json", "{not json")
    with pytest.raises(LabelError, match="not valid JSON") as err:
        import_dataset_json(app_folder / "dataset.json", songs, overwrite=True)
    assert str(songs / "b.json") in str(err.value)
    assert not (songs / "a.json").exists() and (songs / "b.json").read_text() == "{not json"


def test_import_finds_moved_songs_by_unique_name(tmp_path):
    _touch(tmp_path / "new" / "deep" / "a.wav")
    _touch(tmp_path / "old.json", json.dumps([{"audio_path": "/old/machine/a.wav", "filename": "a.wav", "bpm": 77},
                                              {"audio_path": str(tmp_path / "elsewhere.wav")}]))
    _touch(tmp_path / "elsewhere.wav")
    report = import_dataset_json(tmp_path / "old.json", tmp_path / "new")
    assert report.written == [tmp_path / "new" / "deep" / "a.json"]
    assert json.loads(report.written[0].read_text()) == {"bpm": 77}
    assert "not found inside" in report.problems[0].reason  # outside the folder: not written
