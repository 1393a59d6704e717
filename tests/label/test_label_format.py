"""The understand answer is read right, and machine-made values are checked before they are written."""

from __future__ import annotations

import pytest

from acetune.errors import ConfigError
from acetune.label.fields import check_values, normalize_key, parse_fields
from acetune.label.lm_format import code_tokens, parse_answer

UPSTREAM_ANSWER = (  # the layout upstream's parser reads: key: value lines in <think>, then the lyrics
    "<think>\nbpm: 73\ncaption: A calm piano melody\n  with soft strings\nduration: 273\ngenres: Chinese folk\n"
    "keyscale: G major\nlanguage: zh\ntimesignature: 4\n</think>\n\n# Lyric\n[Verse]\nline one\nline two<|im_end|>"
)


def test_upstream_answer_is_parsed_into_fields():
    assert parse_answer(UPSTREAM_ANSWER) == {
        "bpm": "73", "caption": "A calm piano melody with soft strings", "genre": "Chinese folk",
        "keyscale": "G major", "language": "zh", "timesignature": "4", "lyrics": "[Verse]\nline one\nline two",
    }


def test_header_layout_is_parsed_too():
    text = "<think>\n# BPM\n120\n\n# Keyscale\nC Major\n\n# Vocal Language\nen\n</think>\n# Lyric\nla la"
    assert parse_answer(text) == {"bpm": "120", "keyscale": "C Major", "language": "en", "lyrics": "la la"}


def test_answer_without_labels_gives_nothing():
    assert parse_answer("garbage text with no fields") == {}


def test_code_tokens_are_written_back_to_back():
    assert code_tokens([0, 17, 63999]) == "<|audio_code_0|><|audio_code_17|><|audio_code_63999|>"


@pytest.mark.parametrize(("text", "key"), [("C major", "C major"), ("d♭ Major", "C# major"), ("Bb minor", "Bb minor"),
                                           ("A# min", "Bb minor"), ("Fb major", "E major"), ("H major", None),
                                           ("C dorian", None), ("", None)])
def test_keys_are_one_of_24_in_one_spelling(text, key):
    assert normalize_key(text) == key


def test_invalid_values_are_dropped_with_a_note():
    checked = check_values({"bpm": "0", "keyscale": "X lydian", "language": "klingon", "timesignature": "5",
                            "caption": "  warm  ", "genre": "N/A"})
    assert checked.values == {"caption": "warm"}
    assert [note.split()[0] for note in checked.dropped] == ["bpm", "keyscale", "language", "timesignature"]
    assert "30..300" in checked.dropped[0]


def test_valid_values_are_normalised():
    checked = check_values({"bpm": "128", "keyscale": "F# Minor", "language": "English", "timesignature": "3/4"})
    assert checked.values == {"bpm": 128, "keyscale": "F# minor", "language": "en", "timesignature": "3"}
    assert checked.dropped == ()


def test_unknown_language_is_nothing_said_not_an_error():
    assert check_values({"language": "unknown"}) == check_values({})


def test_fields_option():
    assert parse_fields("caption, bpm") == ("caption", "bpm")
    assert "lyrics" in parse_fields(None)
    with pytest.raises(ConfigError, match="tempo") as info:
        parse_fields("caption,tempo")
    assert "caption,genre,lyrics" in info.value.fix
