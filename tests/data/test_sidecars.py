"""Label files beside the audio: song.json, song.txt, caption/lyrics .txt, and atomic merged writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acetune.data.labels import SampleLabels
from acetune.data.sidecars import (
    read_json_sidecar,
    read_song_txt,
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


def test_json_sidecar_language_values_of_other_tools(tmp_path):
    english = _write(tmp_path / "a.json", json.dumps({"caption": "c", "language": "English"}))
    assert read_json_sidecar(english).language == "en"
    none = _write(tmp_path / "b.json", json.dumps({"language": "instrumental", "lyrics": ""}))
    assert (read_json_sidecar(none).language, read_json_sidecar(none).is_instrumental) == ("unknown", True)
    odd = _write(tmp_path / "c.json", json.dumps({"caption": "c", "language": "Klingon"}))
    with pytest.raises(LabelError, match="'Klingon' is not an ACE-Step language code"):
        read_json_sidecar(odd)  # strict without a notes list (what `dataset edit` uses)
    notes: list[str] = []
    assert read_json_sidecar(odd, notes) == SampleLabels(caption="c")
    assert len(notes) == 1 and "'Klingon'" in notes[0] and "read as unknown" in notes[0]


def test_song_txt_side_step_and_plain_lyrics(tmp_path):
    side_step = _write(tmp_path / "a.txt", "\ufeffcaption: warm tape hiss\r\ngenre: lo-fi\r\nbpm: 84\r\n"
                                          "key: D minor\r\nsignature: 3/4\r\nrepeat: 2\r\nlyrics:\r\n"
                                          "[Verse 1]\r\nLove: it hurts\r\n")
    assert read_song_txt(side_step) == SampleLabels(caption="warm tape hiss", genre="lo-fi", bpm=84,
                                                    keyscale="D minor", timesignature="3",
                                                    lyrics="[Verse 1]\nLove: it hurts", extra={"repeat": "2"})
    plain = _write(tmp_path / "b.txt", "[Verse 1]\nLove: it hurts\n\n[Chorus]\nla la\n")
    assert read_song_txt(plain) == SampleLabels(lyrics="[Verse 1]\nLove: it hurts\n\n[Chorus]\nla la")
    bad = _write(tmp_path / "c.txt", "caption: x\nbpm: quick\nlyrics:\n")
    with pytest.raises(LabelError, match="bpm must be a whole number") as err:
        read_song_txt(bad)
    assert str(bad) in str(err.value)


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
