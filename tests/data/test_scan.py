"""Folder scan: recursion, pairing by stem, precedence CSV < song.txt < caption/lyrics txt < json, problems that
do not stop it, notices, and a folder labelled with the peer tools' files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from acetune.data.dataset import Dataset, Notice, TagConfig, find_audio_files, locate_audio, scan_dataset
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


def test_precedence_csv_then_song_txt_then_caption_txt_then_json(tmp_path):
    _touch(tmp_path / "song.wav")
    _touch(tmp_path / "labels.csv", "filename,caption,genre,bpm,lyrics,language,timesignature\n"
                                    "song.wav,csv caption,csv genre,100,csv lyrics,de,3\n")
    _touch(tmp_path / "song.txt", "caption: st caption\ngenre: st genre\nkey: D minor\nlyrics:\nst lyrics\n")
    _touch(tmp_path / "song.caption.txt", "txt caption")
    _touch(tmp_path / "song.lyrics.txt", "txt lyrics")
    _touch(tmp_path / "song.json", json.dumps({"caption": "json caption", "keyscale": "E minor", "x": 1}))
    sample = scan_dataset(tmp_path).dataset.samples[0]
    labels = sample.labels
    assert labels.caption == "json caption"  # json beats caption.txt beats song.txt beats csv
    assert labels.lyrics == "txt lyrics"  # lyrics.txt beats song.txt beats csv
    assert (labels.genre, labels.keyscale) == ("st genre", "E minor")  # song.txt beats csv; json beats song.txt
    assert (labels.bpm, labels.language, labels.timesignature) == (100, "de", "3")  # only the csv has these
    assert labels.extra == {"x": 1}
    assert [p.name for p in sample.label_sources] == ["labels.csv", "song.txt", "song.caption.txt",
                                                      "song.lyrics.txt", "song.json"]


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


def test_a_csv_without_a_file_column_stops_the_scan(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "meta.csv", "title,stars\nA,5\n")
    with pytest.raises(LabelError, match="no filename, File or path column") as err:
        scan_dataset(tmp_path)
    assert str(tmp_path / "meta.csv") in str(err.value)


def test_a_malformed_song_txt_skips_only_its_song(tmp_path):
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "b.wav")
    _touch(tmp_path / "a.txt", "caption: x\n[Verse]\nla la\n")
    result = scan_dataset(tmp_path)
    assert [s.relative for s in result.dataset.samples] == ["b.wav"]
    assert result.problems[0].path.name == "a.wav" and "no 'lyrics:' line" in result.problems[0].reason


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


def _peer_folder(root: Path) -> Path:
    """Songs labelled the ways users of Side-Step, the ACE-Step app and ace-lora-trainer label them."""
    for name in ("side/one.wav", "side/two.flac", "side/plain.wav", "app/a.wav", "app/b.mp3", "app/deep/c.wav",
                 "alt/x.wav", "alt/y.wav", "lang/en.wav", "lang/inst.wav", "lang/odd.wav", "bare.wav"):
        _touch(root / name)
    _touch(root / "side" / "one.txt", "caption: dusty boom bap, vinyl crackle\ngenre: hip hop\nbpm: 92\n"
                                      "key: A minor\nsignature: 4\nrepeat: 2\nlyrics:\n[Verse 1]\nLove: it hurts\n")
    _touch(root / "side" / "two.txt", "caption: solo cello\ngenre: classical\nbpm:\nkey:\nsignature:\n"
                                      "is_instrumental: true\nlyrics:\n")
    _touch(root / "side" / "plain.txt", "[Verse 1]\nLove: it hurts\n\n[Chorus]\nnever again\n")
    _touch(root / "side" / "plain.caption.txt", "folk ballad")
    _touch(root / "app" / "metadata.csv", "\ufeffFile;BPM;Key;Caption;Mood;Rating\r\n"
                                          "a.wav;120;D major;bright synth pop, female vocal;happy;5\r\n"
                                          "b.mp3;96.0;F# minor;dark trip hop;;\r\n"
                                          "c.wav;;;lo-fi piano;calm;3\r\n")
    _touch(root / "alt" / "captions.csv",
           "filename,path,caption,bpm,keyscale,timesignature,duration,genre,language\n"
           "x.wav,C:\\Users\\me\\music\\x.wav,\"warm jazz trio, brushed drums\",104,Bb Major,4,31,jazz,it\n"
           "y.wav,C:\\Users\\me\\music\\y.wav,gritty garage rock,150,E Minor,4,28,rock,Gibberish\n")
    _touch(root / "lang" / "en.json", json.dumps({"caption": "anthemic pop", "language": "English"}))
    _touch(root / "lang" / "inst.json", json.dumps({"caption": "ambient pads", "language": "instrumental"}))
    _touch(root / "lang" / "odd.json", json.dumps({"caption": "chant", "language": "Elvish"}))
    return root


def test_a_folder_labelled_with_peer_tools_files(tmp_path):
    result = scan_dataset(_peer_folder(tmp_path / "songs"))
    assert result.problems == []
    got = {s.relative: s.labels for s in result.dataset.samples}
    assert len(got) == 12  # every song is usable
    assert got["side/one.wav"] == SampleLabels(caption="dusty boom bap, vinyl crackle", genre="hip hop", bpm=92,
                                               keyscale="A minor", timesignature="4",
                                               lyrics="[Verse 1]\nLove: it hurts", extra={"repeat": "2"})
    assert got["side/two.flac"] == SampleLabels(caption="solo cello", genre="classical", is_instrumental=True)
    assert got["side/plain.wav"] == SampleLabels(caption="folk ballad",
                                                 lyrics="[Verse 1]\nLove: it hurts\n\n[Chorus]\nnever again")
    assert got["app/a.wav"] == SampleLabels(caption="bright synth pop, female vocal", bpm=120, keyscale="D major",
                                            extra={"mood": "happy", "rating": "5"})
    assert (got["app/b.mp3"].bpm, got["app/b.mp3"].keyscale, got["app/b.mp3"].extra) == (96, "F# minor", {})
    assert (got["app/deep/c.wav"].caption, got["app/deep/c.wav"].extra) == \
        ("lo-fi piano", {"mood": "calm", "rating": "3"})  # by its file name below the CSV, as the app matches
    assert got["alt/x.wav"] == SampleLabels(caption="warm jazz trio, brushed drums", bpm=104, keyscale="Bb Major",
                                            timesignature="4", duration=31, genre="jazz", language="it")
    assert (got["alt/y.wav"].caption, got["alt/y.wav"].language) == ("gritty garage rock", "unknown")
    assert got["lang/en.wav"].language == "en"
    assert (got["lang/inst.wav"].language, got["lang/inst.wav"].is_instrumental) == ("unknown", True)
    assert got["lang/odd.wav"].language == "unknown"
    assert [(n.path.relative_to(tmp_path / "songs").as_posix(), n.text.split(";")[0]) for n in result.notices] == [
        ("app/metadata.csv", "columns 'Mood', 'Rating' are not labels acetune uses: kept as extra fields of "
                             "each song (they do not change training)"),  # once per CSV, not per row
        ("alt/captions.csv", "row 3: language 'Gibberish' is not an ACE-Step language code, read as unknown"),
        ("lang/odd.json", "language 'Elvish' is not an ACE-Step language code, read as unknown"),
    ]
    assert [n.path.name for n in result.dataset.uncaptioned()] == ["bare.wav"]


def test_uncaptioned_songs_show_the_caption_they_would_train_on(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        _touch(tmp_path / name)
    _touch(tmp_path / "a.json", json.dumps({"caption": "has one"}))
    _touch(tmp_path / "b.json", json.dumps({"genre": "rock", "bpm": 100}))
    _touch(tmp_path / "c.json", json.dumps({"genre": "jazz", "prompt_override": "genre"}))
    _touch(tmp_path / "d.json", json.dumps({"custom_tag": "own"}))
    dataset = scan_dataset(tmp_path, tag=TagConfig("zx")).dataset
    notices = dataset.uncaptioned()
    assert [n.path.name for n in notices] == ["b.wav", "d.wav"]  # c uses its genre
    assert notices[0].text.startswith("no caption (its genre 'rock' is used only with --genre-ratio or "
                                      "prompt_override genre): it would train on the caption 'zx' and the metas")
    assert notices[1].text.startswith("no caption or genre: it would train on the caption 'own' and the metas")
    assert "fix: add a caption" in notices[1].text
    with_genre = scan_dataset(tmp_path, tag=TagConfig("zx"), genre_ratio=100).dataset
    assert [n.path.name for n in with_genre.uncaptioned()] == ["d.wav"]
    assert scan_dataset(tmp_path, tag=TagConfig("zx", "replace")).dataset.uncaptioned() == []
    assert isinstance(notices[0], Notice)

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
