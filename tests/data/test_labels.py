"""SampleLabels: strict parsing, coercions we allow, round trips and merging by precedence."""

from __future__ import annotations

import pytest

from acetune.data.labels import LANGUAGES, SampleLabels, label_conflicts, merge_labels
from acetune.errors import LabelError

SRC = "songs/a.json"


def test_fifty_languages_plus_unknown():
    assert len(LANGUAGES) == 51 and len(set(LANGUAGES)) == 51 and LANGUAGES[-1] == "unknown"


def test_known_keys_are_typed_and_unknown_keys_kept():
    labels = SampleLabels.from_dict({
        "caption": "dreamy synthpop", "lyrics": "[Verse]\nhello", "genre": "pop", "bpm": 120,
        "keyscale": "F# minor", "timesignature": "4", "language": "en", "duration": 183,
        "custom_tag": "zx", "is_instrumental": False, "prompt_override": "genre",
        "mood": "dark", "nested": {"a": [1, 2]},
    }, source=SRC)
    assert (labels.bpm, labels.keyscale, labels.duration, labels.prompt_override) == (120, "F# minor", 183, "genre")
    assert labels.extra == {"mood": "dark", "nested": {"a": [1, 2]}}


@pytest.mark.parametrize(("raw", "stored"),
                         [(120, 120), (120.0, 120), ("120", 120), (" 96 ", 96), ("120.0", 120), (None, None),
                          ("", None), ("N/A", None)])
def test_bpm_accepts_whole_numbers_only(raw, stored):
    assert SampleLabels.from_dict({"bpm": raw}).bpm == stored


def test_not_available_means_not_given_for_metas_only():
    labels = SampleLabels.from_dict({"keyscale": "N/A", "timesignature": " N/A", "duration": "N/A", "caption": "N/A"})
    assert (labels.keyscale, labels.timesignature, labels.duration, labels.caption) == (None, None, None, "N/A")


def test_table_aliases_are_not_json_keys():
    assert SampleLabels.from_dict({"key": "C major"}).extra == {"key": "C major"}  # only CSV / song.txt map it


@pytest.mark.parametrize("raw", [120.5, "fast", "120.5", "1e2", True, [120], 0, -3])
def test_bpm_rejects_anything_else_naming_file_and_key(raw):
    with pytest.raises(LabelError) as err:
        SampleLabels.from_dict({"bpm": raw}, source=SRC)
    assert SRC in str(err.value) and "bpm" in str(err.value)


@pytest.mark.parametrize(("raw", "stored"),
                         [("4", "4"), ("4/4", "4"), ("3/4", "3"), ("6/8", "6"), (4, "4"), (None, None)])
def test_timesignature_stored_as_beats_per_bar(raw, stored):
    assert SampleLabels.from_dict({"timesignature": raw}).timesignature == stored


@pytest.mark.parametrize("raw", ["four", "4/0", "0", 4.5, "4/4/4"])
def test_bad_timesignature(raw):
    with pytest.raises(LabelError, match="timesignature"):
        SampleLabels.from_dict({"timesignature": raw}, source=SRC)


def test_wrong_text_type_names_expected_type():
    with pytest.raises(LabelError) as err:
        SampleLabels.from_dict({"caption": 12}, source=SRC)
    assert "caption must be a string" in str(err.value) and SRC in str(err.value)


def test_not_an_object():
    with pytest.raises(LabelError, match="JSON object"):
        SampleLabels.from_dict(["caption"], source=SRC)


def test_language_codes_and_alias():
    assert SampleLabels.from_dict({"vocal_language": "DE"}).language == "de"
    assert SampleLabels.from_dict({"language": "ja", "vocal_language": "ja"}).language == "ja"
    with pytest.raises(LabelError, match="disagree"):
        SampleLabels.from_dict({"language": "ja", "vocal_language": "en"}, source=SRC)
    with pytest.raises(LabelError, match="not an ACE-Step language code"):
        SampleLabels.from_dict({"language": "klingon"}, source=SRC)
    assert SampleLabels.from_dict({"language": "German"}).language == "de"  # more in test_languages.py


def test_is_instrumental_and_prompt_override():
    assert SampleLabels.from_dict({"is_instrumental": "true"}).is_instrumental is True
    assert [SampleLabels.from_dict({"is_instrumental": v}).is_instrumental for v in ("Yes", "no", "1", "0")] == \
        [True, False, True, False]  # as Side-Step's song.txt reader takes them
    assert SampleLabels.from_dict({"is_instrumental": None}).is_instrumental is None
    with pytest.raises(LabelError, match="is_instrumental"):
        SampleLabels.from_dict({"is_instrumental": 1}, source=SRC)
    with pytest.raises(LabelError, match="prompt_override"):
        SampleLabels.from_dict({"prompt_override": "lyrics"}, source=SRC)


@pytest.mark.parametrize("full", [False, True])
def test_round_trip_preserves_every_value(full):
    labels = SampleLabels(caption="c", lyrics="", genre="g", bpm=90, keyscale="C major", timesignature="3",
                          language="fr", duration=0, custom_tag="t", is_instrumental=False,
                          prompt_override="caption", extra={"x": None, "y": [1]})
    assert SampleLabels.from_dict(labels.to_dict(full=full)) == labels


def test_compact_dict_leaves_out_only_defaults():
    assert SampleLabels(bpm=100, is_instrumental=False, extra={"k": ""}).to_dict() == \
        {"bpm": 100, "is_instrumental": False, "k": ""}


def test_merge_fills_gaps_and_overwrites_only_when_asked():
    base = SampleLabels(caption="mine", bpm=100, extra={"mood": "dark"})
    overlay = SampleLabels(caption="", genre="rock", bpm=128, extra={"mood": "bright", "new": 1})
    kept = merge_labels(base, overlay, overwrite=False)
    assert (kept.caption, kept.genre, kept.bpm, kept.extra) == ("mine", "rock", 100, {"mood": "dark", "new": 1})
    won = merge_labels(base, overlay, overwrite=True)
    assert (won.caption, won.genre, won.bpm, won.extra) == ("mine", "rock", 128, {"mood": "bright", "new": 1})
    assert label_conflicts(base, overlay) == ["bpm", "mood"]
