"""Language values other tools write: codes in any case, English names, "instrumental", and the rest."""

from __future__ import annotations

import pytest

from acetune.data.languages import LANGUAGE_NAMES, LANGUAGES, LanguageReading, read_language
from acetune.data.labels import SampleLabels
from acetune.errors import LabelError


@pytest.mark.parametrize(("value", "code"), [
    ("en", "en"), ("EN", "en"), (" De ", "de"), ("English", "en"), ("japanese", "ja"), ("JAPANESE", "ja"),
    ("Haitian  Creole", "ht"), ("Cantonese", "yue"), ("Mandarin", "zh"), ("unknown", "unknown"), ("", "unknown"),
])
def test_codes_and_names(value, code):
    assert read_language(value) == LanguageReading(code)


def test_instrumental_and_unrecognised():
    assert read_language("Instrumental") == LanguageReading("unknown", instrumental=True)
    assert read_language("Klingon") == LanguageReading("unknown", recognised=False)
    assert read_language("en-US") == LanguageReading("unknown", recognised=False)  # not guessed


def test_every_name_points_at_a_real_code_and_every_code_has_a_name():
    assert set(LANGUAGE_NAMES.values()) <= set(LANGUAGES)
    assert set(LANGUAGES) - set(LANGUAGE_NAMES.values()) == {"unknown"}


def test_labels_map_warn_or_refuse():
    assert SampleLabels.from_dict({"language": "French"}).language == "fr"
    labels = SampleLabels.from_dict({"language": "instrumental"})
    assert (labels.language, labels.is_instrumental) == ("unknown", True)
    said_vocal = SampleLabels.from_dict({"is_instrumental": False, "language": "instrumental"})
    assert said_vocal.is_instrumental is False  # the record's own value wins
    with pytest.raises(LabelError, match="not an ACE-Step language code"):
        SampleLabels.from_dict({"language": "Elvish"}, source="a.json")
    notes: list[str] = []
    assert SampleLabels.from_dict({"language": "Elvish", "bpm": 90}, source="a.json", notes=notes) == \
        SampleLabels(bpm=90)
    assert notes == ["language 'Elvish' is not an ACE-Step language code, read as unknown; fix: write a code "
                     "such as en, de, ja or zh, or an English name such as German"]
    with pytest.raises(LabelError, match="language must be a language code"):
        SampleLabels.from_dict({"language": 3}, notes=[])  # a wrong type is still an error
