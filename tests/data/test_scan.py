"""Folder scan: recursion, pairing by stem, precedence CSV < txt < json, and problems that do not stop it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from acetune.data.dataset import Dataset, TagConfig, find_audio_files, locate_audio, scan_dataset
from acetune.data.labels import SampleLabels
from acetune.errors import LabelError


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_recursive_sorted_case_insensitive_and_hidden_skipped(tmp_path):
    for name in ("b.WAV", "a.flac", "sub/c.mp3", "sub/deeper/d.Opus", ".hidden.wav", ".cache/e.wav", "notes.txt",
                 "sub/f.json"):
        _touch(tmp_path / name)
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)] == \
        ["a.flac", "b.WAV", "sub/c.mp3", "sub/deeper/d.Opus"]
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["a.flac", "b.WAV", "sub/c.mp3", "sub/deeper/d.Opus"]
    assert result.problems == []
    assert all(s.labels == SampleLabels() and s.label_sources == () for s in result.dataset.samples)


def test_empty_folder_is_an_error_with_a_fix(tmp_path):
    _touch(tmp_path / "readme.txt")
    with pytest.raises(LabelError, match="no audio files") as err:
        scan_dataset(tmp_path)
    assert str(tmp_path) in str(err.value) and "fix:" in str(err.value)
    with pytest.raises(LabelError, match="does not exist"):
        scan_dataset(tmp_path / "missing")


def test_precedence_csv_then_txt_then_json(tmp_path):
    _touch(tmp_path / "song.wav")
    _touch(tmp_path / "labels.csv", "filename,caption,genre,bpm,lyrics,language\n"
                                    "song.wav,csv caption,csv genre,100,csv lyrics,de\n")
    _touch(tmp_path / "song.caption.txt", "txt caption")
    _touch(tmp_path / "song.lyrics.txt", "txt lyrics")
    _touch(tmp_path / "song.json", json.dumps({"caption": "json caption", "keyscale": "E minor", "x": 1}))
    sample = scan_dataset(tmp_path).dataset.samples[0]
    labels = sample.labels
    assert labels.caption == "json caption"  # json beats txt beats csv
    assert labels.lyrics == "txt lyrics"  # txt beats csv
    assert (labels.genre, labels.bpm, labels.language) == ("csv genre", 100, "de")  # only the csv has these
    assert (labels.keyscale, labels.extra) == ("E minor", {"x": 1})
    assert [p.name for p in sample.label_sources] == ["labels.csv", "song.caption.txt", "song.lyrics.txt", "song.json"]


def test_empty_json_value_does_not_hide_a_lower_source(tmp_path):
    _touch(tmp_path / "song.wav")
    _touch(tmp_path / "song.caption.txt", "from txt")
    _touch(tmp_path / "song.json", json.dumps({"caption": "", "bpm": None}))
    assert scan_dataset(tmp_path).dataset.samples[0].labels.caption == "from txt"


def test_csv_in_a_subfolder_names_files_relative_to_itself(tmp_path):
    _touch(tmp_path / "album" / "one.wav")
    _touch(tmp_path / "album" / "inner" / "two.wav")
    _touch(tmp_path / "album" / "labels.csv", "filename,caption\none,first\ninner/two.wav,second\n")
    samples = scan_dataset(tmp_path).dataset.samples
    assert [(s.relative, s.labels.caption) for s in samples] == [("album/inner/two.wav", "second"),
                                                                 ("album/one.wav", "first")]


def test_bad_sidecar_and_missing_csv_file_are_problems(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        _touch(tmp_path / name)
    _touch(tmp_path / "b.json", "{broken")
    _touch(tmp_path / "labels.csv", "filename,caption,bpm\na.wav,ok,\nghost.wav,x,\nc.wav,bad,fast\n")
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["a.wav"]
    reasons = {p.path.name: p.reason for p in result.problems}
    assert set(reasons) == {"b.wav", "c.wav", "labels.csv"}
    assert str(tmp_path / "b.json") in reasons["b.wav"] and "not valid JSON" in reasons["b.wav"]
    assert "row 4" in reasons["c.wav"] and "bpm" in reasons["c.wav"]
    assert "row 3" in reasons["labels.csv"] and "'ghost.wav' does not exist" in reasons["labels.csv"]


def test_bad_csv_columns_stop_the_scan(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "meta.csv", "filename,stars\na.wav,5\n")
    with pytest.raises(LabelError, match="unknown column") as err:
        scan_dataset(tmp_path)
    assert str(tmp_path / "meta.csv") in str(err.value)


def test_a_song_in_two_csvs_is_an_error(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "one.csv", "filename,caption\na.wav,x\n")
    _touch(tmp_path / "two.csv", "filename,caption\na,y\n")
    with pytest.raises(LabelError, match="labelled twice") as err:
        scan_dataset(tmp_path)
    assert "one.csv, row 2" in str(err.value) and "two.csv, row 2" in str(err.value)


def test_songs_sharing_a_stem_are_problems(tmp_path):
    _touch(tmp_path / "x.wav")
    _touch(tmp_path / "x.flac")
    _touch(tmp_path / "y.wav")
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["y.wav"]
    assert sorted(p.path.name for p in result.problems) == ["x.flac", "x.wav"]
    assert "rename" in result.problems[0].reason


def test_dataset_texts_find_and_ratio_check(tmp_path):
    _touch(tmp_path / "a.wav", )
    _touch(tmp_path / "a.json", json.dumps({"caption": "c", "genre": "g", "lyrics": "hi", "language": "en"}))
    _touch(tmp_path / "b.wav")
    dataset = scan_dataset(tmp_path, tag=TagConfig("zx", "append"), genre_ratio=100).dataset
    assert dataset.caption_texts() == ["g, zx", "zx"]
    assert dataset.lyric_texts() == ["# Languages\nen\n\n# Lyric\nhi<|endoftext|>",
                                     "# Languages\nunknown\n\n# Lyric\n[Instrumental]<|endoftext|>"]
    assert dataset.find("b.wav").relative == "b.wav"
    assert dataset.find(tmp_path / "a.wav").relative == "a.wav"
    with pytest.raises(LabelError, match="not a sample"):
        dataset.find("zzz.wav")
    with pytest.raises(LabelError, match="genre ratio"):
        Dataset(tmp_path, (), genre_ratio=101)


def test_locate_audio(tmp_path):
    _touch(tmp_path / "songs" / "a.wav")
    _touch(tmp_path / "songs" / "a.json", "{}")
    _touch(tmp_path / "outside.wav")
    assert locate_audio(tmp_path / "songs", "a.wav") == (tmp_path / "songs" / "a.wav").resolve()
    with pytest.raises(LabelError, match="not an audio file"):
        locate_audio(tmp_path / "songs", "a.json")
    with pytest.raises(LabelError, match="outside the dataset folder"):
        locate_audio(tmp_path / "songs", str(tmp_path / "outside.wav"))
    with pytest.raises(LabelError, match="no file"):
        locate_audio(tmp_path / "songs", "b.wav")


def test_unreadable_entries_named_like_audio_are_problems_never_opened(tmp_path):
    """A FIFO would block the first reader forever; links that dangle or loop and folders are not files."""
    _touch(tmp_path / "good.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "deleted.wav")
    (tmp_path / "loop1.wav").symlink_to(tmp_path / "loop2.wav")
    (tmp_path / "loop2.wav").symlink_to(tmp_path / "loop1.wav")
    _touch(tmp_path / "album.wav" / "inside.flac")  # a folder named like a song: walked, reported
    (tmp_path / "linked.wav").symlink_to(tmp_path / "good.wav")  # a good link is followed
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["album.wav/inside.flac", "good.wav", "linked.wav"]
    reasons = {p.path.name: p.reason for p in result.problems}
    assert reasons == {
        "pipe.wav": "skipped: a named pipe (FIFO), not a regular file; never opened",
        "dangling.wav": f"skipped: a link to a missing file ({tmp_path / 'deleted.wav'}); never opened",
        "loop1.wav": "skipped: a link that loops (it leads back to itself); never opened",
        "loop2.wav": "skipped: a link that loops (it leads back to itself); never opened",
        "album.wav": "skipped: a folder, not an audio file (files inside it are still scanned)",
    }
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)] == \
        ["album.wav/inside.flac", "good.wav", "linked.wav"]


def test_folder_links_are_followed_once(tmp_path):
    _touch(tmp_path / "library" / "a.wav")
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "lib").symlink_to(tmp_path / "library")  # a linked folder of songs is walked
    (tmp_path / "songs" / "lib" / "up").symlink_to(tmp_path / "songs")  # and a link back up is not: it loops
    result = scan_dataset(tmp_path / "songs")
    assert [s.relative for s in result.dataset.samples] == ["lib/a.wav"]
    assert [(p.path.relative_to(tmp_path / "songs").as_posix(), "already scanned" in p.reason)
            for p in result.problems] == [("lib/up", True)]


def test_a_name_that_is_not_utf8_is_a_problem(tmp_path):
    _touch(tmp_path / "good.wav")
    bad = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.wav"))  # Latin-1 bytes: not UTF-8
    bad.write_bytes(b"")
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["good.wav"]
    (problem,) = result.problems
    assert problem.path == bad and "caf\\xe9.wav" in problem.reason and "not valid UTF-8" in problem.reason
