"""Label files beside the audio: song.json, caption/lyrics .txt, label CSVs, and atomic merged writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acetune.data.labels import SampleLabels
from acetune.data.sidecars import (
    read_json_sidecar,
    read_label_csv,
    read_text_sidecars,
    replace_json_sidecar,
    sidecar_conflicts,
    write_json_sidecar,
)
from acetune.errors import LabelError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_json_sidecar(tmp_path):
    path = _write(tmp_path / "song.json", json.dumps({"caption": "c", "bpm": 100, "mood": "x"}))
    assert read_json_sidecar(path) == SampleLabels(caption="c", bpm=100, extra={"mood": "x"})


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ('["caption"]', "must be a JSON object"),
    ('{"bpm": "fast"}', "bpm must be a whole number"),
    ('{"caption": ["a"]}', "caption must be a string"),
])
def test_bad_json_sidecar_names_the_file(tmp_path, text, message):
    path = _write(tmp_path / "song.json", text)
    with pytest.raises(LabelError, match=message) as err:
        read_json_sidecar(path)
    assert str(path) in str(err.value) and "fix:" in str(err.value)


def test_text_sidecars(tmp_path):
    audio = tmp_path / "song.wav"
    _write(tmp_path / "song.caption.txt", "  soft piano\n")
    _write(tmp_path / "song.lyrics.txt", "[Verse]\nline one\n\n")
    labels, sources = read_text_sidecars(audio)
    assert (labels.caption, labels.lyrics) == ("soft piano", "[Verse]\nline one")
    assert sources == (tmp_path / "song.caption.txt", tmp_path / "song.lyrics.txt")
    assert read_text_sidecars(tmp_path / "other.wav") == (SampleLabels(), ())


def test_label_csv_rows_aliases_and_multiline_cells(tmp_path):
    path = _write(tmp_path / "labels.csv",
                  'Filename,caption,key,bpm,lyrics\na.wav,one,C major,120,"la\nla"\n\nb.flac,two,,,\n')
    rows = read_label_csv(path)
    assert [(r.filename, r.line) for r in rows] == [("a.wav", 2), ("b.flac", 5)]
    assert rows[0].labels() == SampleLabels(caption="one", keyscale="C major", bpm=120, lyrics="la\nla")
    assert rows[1].values == {"caption": "two"}


def test_label_csv_unknown_columns(tmp_path):
    path = _write(tmp_path / "labels.csv", "filename,caption,rating,mood\na.wav,x,5,dark\n")
    with pytest.raises(LabelError) as err:
        read_label_csv(path)
    text = str(err.value)
    assert str(path) in text and "'rating'" in text and "'mood'" in text and "timesignature" in text


def test_label_csv_duplicate_rows(tmp_path):
    path = _write(tmp_path / "labels.csv", "filename,caption\na.wav,x\nb.wav,y\na.wav,z\n")
    with pytest.raises(LabelError, match=r"'a.wav' is labelled twice, in rows 2 and 4") as err:
        read_label_csv(path)
    assert str(path) in str(err.value)


def test_label_csv_needs_filename_column_and_one_keyscale(tmp_path):
    with pytest.raises(LabelError, match="no filename column"):
        read_label_csv(_write(tmp_path / "a.csv", "caption\nx\n"))
    with pytest.raises(LabelError, match="keyscale more than once"):
        read_label_csv(_write(tmp_path / "b.csv", "filename,key,keyscale\na.wav,C major,C major\n"))


def test_write_merges_and_keeps_user_values(tmp_path):
    audio = tmp_path / "song.wav"
    _write(tmp_path / "song.json", json.dumps({"caption": "mine", "bpm": 90, "mood": "dark"}))
    write_json_sidecar(audio, SampleLabels(caption="theirs", bpm=128, keyscale="A minor", extra={"n": 1}),
                       overwrite_fields=False)
    data = json.loads((tmp_path / "song.json").read_text())
    assert data == {"caption": "mine", "bpm": 90, "keyscale": "A minor", "mood": "dark", "n": 1}
    write_json_sidecar(audio, SampleLabels(bpm=128), overwrite_fields=True)
    assert json.loads((tmp_path / "song.json").read_text())["bpm"] == 128
    assert [p.name for p in tmp_path.iterdir()] == ["song.json"]  # no temp files left behind


def test_write_creates_and_replace_writes_exactly(tmp_path):
    audio = tmp_path / "sub" / "song.flac"
    path = write_json_sidecar(audio, SampleLabels(genre="jazz"), overwrite_fields=False)
    assert path == tmp_path / "sub" / "song.json" and json.loads(path.read_text()) == {"genre": "jazz"}
    assert sidecar_conflicts(audio, SampleLabels(genre="rock", bpm=1)) == ["genre"]
    replace_json_sidecar(audio, SampleLabels(bpm=70))
    assert json.loads(path.read_text()) == {"bpm": 70}


def test_write_refuses_to_merge_into_a_broken_sidecar(tmp_path):
    _write(tmp_path / "song.json", "{oops")
    with pytest.raises(LabelError, match="not valid JSON"):
        write_json_sidecar(tmp_path / "song.wav", SampleLabels(bpm=1), overwrite_fields=True)
    assert (tmp_path / "song.json").read_text() == "{oops"
