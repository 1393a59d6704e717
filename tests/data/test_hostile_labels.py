"""Label files a hostile-but-ordinary user might leave beside a song: each is a listed problem for that song
(never a traceback, never the end of the scan), and no error message repeats a huge value in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acetune.data.dataset import scan_dataset
from acetune.data.dataset_json import read_dataset_json
from acetune.data.label_csv import read_label_csv
from acetune.data.labels import SampleLabels
from acetune.data.sidecars import JSON_MAX_DEPTH, SIDECAR_MAX_BYTES, read_json_sidecar, read_song_txt
from acetune.errors import ECHO_CHARS, LabelError, echoed

HUGE_DIGITS = "9" * 5000  # past Python's 4300-digit limit for int(str)


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


HOSTILE_SIDECARS = {
    "deep.json": ('{"x": ' + "[" * 5000 + "]" * 5000 + "}", "more than 32 levels deep"),
    "digits.json": ('{"bpm": ' + HUGE_DIGITS + "}", "a number of more than 4300 digits"),
    "huge.json": ('{"caption": "' + "a" * (SIDECAR_MAX_BYTES + 1) + '"}', "larger than a label file may be"),
    "numbers.txt": ("caption: x\nbpm: " + HUGE_DIGITS + "\nlyrics:\nla la\n", "too large to be a bpm"),
    "time.txt": ("caption: x\nsignature: " + HUGE_DIGITS + "\nlyrics:\nla la\n", "not a time signature"),
}


def test_hostile_sidecars_are_listed_problems_and_the_scan_goes_on(tmp_path):
    _touch(tmp_path / "good.wav")
    _touch(tmp_path / "good.json", '{"caption": "fine"}')
    for name, (text, _) in HOSTILE_SIDECARS.items():
        _touch(tmp_path / Path(name).with_suffix(".wav").name)
        _touch(tmp_path / name, text)
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["good.wav"]
    reasons = {p.path.stem: p.reason for p in result.problems}
    for name, (_, message) in HOSTILE_SIDECARS.items():
        stem = Path(name).stem
        assert message in reasons[stem] and str(tmp_path / name) in reasons[stem], name
        assert len(reasons[stem]) < 400  # nothing of the file is repeated at length


def test_nesting_up_to_the_cap_is_kept_as_an_extra_field(tmp_path):
    nested: object = "leaf"
    for _ in range(JSON_MAX_DEPTH - 1):  # the top-level object is level 1
        nested = [nested]
    path = _touch(tmp_path / "song.json", json.dumps({"caption": "c", "mood": nested}))
    assert read_json_sidecar(path).extra["mood"] == nested
    path.write_text(json.dumps({"caption": "c", "mood": [nested]}))
    with pytest.raises(LabelError, match="more than 32 levels deep"):
        read_json_sidecar(path)


def test_a_sidecar_just_under_the_size_cap_is_read(tmp_path):
    caption = "a" * (SIDECAR_MAX_BYTES - 20)
    path = _touch(tmp_path / "song.json", json.dumps({"caption": caption}))
    assert read_json_sidecar(path).caption == caption


@pytest.mark.parametrize("raw, stored", [("120", 120), ("0120.0", 120), (999_999_999_999, 999_999_999_999)])
def test_whole_numbers_are_read_exactly_up_to_twelve_digits(raw, stored):
    assert SampleLabels.from_dict({"duration": raw}).duration == stored


@pytest.mark.parametrize("raw", ["1" + "0" * 12, 10**12, "12345678901234567890123", "9" * 400])
def test_larger_numbers_are_named_not_rounded_or_crashed_on(raw):
    with pytest.raises(LabelError, match="too large to be a bpm"):
        SampleLabels.from_dict({"bpm": raw}, source="song.json")


def test_a_song_txt_with_a_huge_number_is_a_label_error(tmp_path):
    path = _touch(tmp_path / "song.txt", HOSTILE_SIDECARS["numbers.txt"][0])
    with pytest.raises(LabelError, match="too large to be a bpm"):
        read_song_txt(path)


def test_a_csv_cell_with_a_huge_number_skips_only_its_song(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "b.wav")
    _touch(tmp_path / "labels.csv", f"filename,caption,bpm\na.wav,ok,90\nb.wav,bad,{HUGE_DIGITS}\n")
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["a.wav"]
    assert "row 3" in result.problems[0].reason and "too large to be a bpm" in result.problems[0].reason


def test_a_csv_cell_past_the_csv_field_limit_is_a_named_error(tmp_path):
    path = _touch(tmp_path / "labels.csv", 'filename,lyrics\na.wav,"' + "la " * 60_000 + '"\n')
    with pytest.raises(LabelError, match="line 2") as err:
        read_label_csv(path)
    assert str(path) in str(err.value) and "field limit" in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("[" * 5000 + "]" * 5000, "more than 32 levels deep"),
    ('{"samples": [{"filename": "a.wav", "bpm": ' + HUGE_DIGITS + "}]}", "more than 4300 digits"),
])
def test_a_hostile_dataset_json_is_a_label_error(tmp_path, text, message):
    path = _touch(tmp_path / "dataset.json", text)
    with pytest.raises(LabelError, match=message) as err:
        read_dataset_json(path)
    assert str(path) in str(err.value)


def test_a_huge_wrong_typed_value_is_echoed_cut_short(tmp_path):
    path = _touch(tmp_path / "song.json", json.dumps({"caption": ["x" * 500_000]}))
    with pytest.raises(LabelError, match="caption must be a string") as err:
        read_json_sidecar(path)
    assert len(str(err.value)) < 400 and "500,000 characters" not in str(err.value)  # a list: its start only
    with pytest.raises(LabelError) as err:
        SampleLabels.from_dict({"language": "x" * 5_000_000})
    assert len(str(err.value)) < 400 and "5,000,000 characters" in str(err.value)


@pytest.mark.parametrize("value", ["y" * 10_000, list(range(10_000)), {str(i): i for i in range(1000)}, 10**5000,
                                   [[[[[[["deep"]]]]]]]], ids=["string", "list", "table", "integer", "nested"])
def test_echoed_values_are_short_and_never_fail(value):
    text = echoed(value)
    assert len(text) <= ECHO_CHARS + 40


def test_short_values_are_echoed_as_their_repr():
    assert echoed("fast") == "'fast'" and echoed(120.5) == "120.5" and echoed([1, 2]) == "[1, 2]"
