"""Whisper lyrics: segments become lines, long pauses paragraphs, no words is instrumental; Whisper's lyrics
beat the LM's when both run; the real pipeline runs on a tiny random Whisper built from a config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acetune.data.dataset import scan_dataset
from acetune.errors import ModelLoadError
from acetune.label import LabelOptions, Labelled, Proposal, label_dataset, label_songs
from acetune.label.whisper import find_whisper, lyric_lines, transcript_values
from tests.label.conftest import write_songs


def test_segments_are_lines_and_long_pauses_start_a_paragraph():
    chunks = [{"timestamp": (0.0, 2.0), "text": " Hold me  tight "}, {"timestamp": (2.3, 4.0), "text": "tonight"},
              {"timestamp": (7.5, 9.0), "text": "we are alive"}, {"timestamp": (9.0, None), "text": "  "}]
    assert lyric_lines(chunks) == "Hold me tight\ntonight\n\nwe are alive"


def test_words_give_lyrics_and_the_detected_language():
    chunks = [{"timestamp": (0.0, 2.0), "text": "hola amigo", "language": "spanish"},
              {"timestamp": (2.0, 3.0), "text": "la la", "language": "spanish"},
              {"timestamp": (3.0, 4.0), "text": "hey", "language": "english"}]
    assert transcript_values(chunks, None) == {"lyrics": "hola amigo\nla la\nhey", "is_instrumental": False,
                                               "language": "spanish"}
    assert transcript_values(chunks, "de")["language"] == "de"  # given, not detected


@pytest.mark.parametrize("text", ["", " [Music] ", "♪ ♪ (instrumental break) ♪", "ah"])
def test_no_words_is_instrumental(text):
    assert transcript_values([{"timestamp": (0.0, 5.0), "text": text}], None) == {
        "lyrics": "[Instrumental]", "is_instrumental": True}


class _Fixed:
    """A labeller that proposes fixed values (to test how answers combine)."""

    def __init__(self, kind: str, values: dict):
        self.kind, self.source, self.fields = kind, f"{kind}:fake", tuple(values)
        self.settings, self.detail, self.values = {}, "fake", values

    def propose(self, audio_path: Path) -> Proposal:
        return Proposal(dict(self.values))


def test_whisper_lyrics_beat_the_lm_and_each_value_names_its_source(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")  # the fake labellers never read it
    lm = _Fixed("lm", {"caption": "lo-fi", "lyrics": "invented words", "language": "fr"})
    whisper = _Fixed("whisper", {"lyrics": "sung words", "language": "en", "is_instrumental": False})
    events = list(label_dataset(scan_dataset(tmp_path).dataset, [lm, whisper]))
    [labelled] = [e for e in events if isinstance(e, Labelled)]
    assert labelled.written == {"caption": "lo-fi", "lyrics": "sung words", "language": "en",
                                "is_instrumental": False}
    assert labelled.sources == {"caption": "lm:fake", "lyrics": "whisper:fake", "language": "whisper:fake",
                                "is_instrumental": "whisper:fake"}
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["label_runs"].keys() == {"lm:fake", "whisper:fake"} and data["lyrics"] == "sung words"


def test_tiny_whisper_runs_through_the_pipeline(tiny_whisper, tmp_path):
    path = write_songs(tmp_path / "songs", {"a.wav": {"caption": "mine"}})["a.wav"]
    options = LabelOptions(with_=("whisper",), whisper=str(tiny_whisper), device="cpu")
    events = list(label_songs(tmp_path / "songs", tmp_path, options))
    assert events[0].detail == "whisper-tiny on cpu, language detected"
    [labelled] = [e for e in events if isinstance(e, Labelled)]
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["caption"] == "mine" and isinstance(data["is_instrumental"], bool)
    assert data["label_sources"]["lyrics"] == "whisper:whisper-tiny"
    assert (data["lyrics"] == "[Instrumental]") == data["is_instrumental"]
    assert set(labelled.written) <= {"lyrics", "language", "is_instrumental"}


def test_which_whisper_is_an_error_with_a_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="no whisper\\*/ folder") as info:
        find_whisper(tmp_path, None)
    assert "--whisper" in info.value.fix
    assert find_whisper(tmp_path, "openai/whisper-large-v3-turbo") == "openai/whisper-large-v3-turbo"
    with pytest.raises(ModelLoadError, match="checkpoint folder not found"):
        find_whisper(tmp_path / "nope", None)
