"""`acetune dataset ...` in-process: list, show, edit, export, import, split, analyze; errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main

RATE = 48_000


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich tables would otherwise wrap at 80 columns under capsys


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def songs(tmp_path) -> Path:
    """Label files only (nothing here decodes audio)."""
    root = tmp_path / "songs"
    _touch(root / "a.wav")
    _touch(root / "sub" / "b.flac")
    _touch(root / "labels.csv", "filename,caption,genre,bpm,key\na.wav,csv caption,rock,100,A minor\n"
                                "sub/b.flac,bee,jazz,,\nghost.wav,x,,,\n")
    _touch(root / "a.json", json.dumps({"caption": "json caption", "mood": "dark"}))
    return root


def test_list_shows_labels_sources_and_problems(songs, capsys):
    _touch(songs / "c.wav")
    _touch(songs / "c.json", "{nope")
    assert main(["dataset", "list", str(songs)]) == 0
    out = capsys.readouterr().out
    assert "json caption" in out and "csv caption" not in out
    assert "A minor" in out and "rock" in out and "jazz" in out
    assert "labels.csv, a.json" in out
    assert "2 song(s)" in out and "2 problem(s)" in out
    assert "'ghost.wav' does not exist" in out and str(songs / "c.json") in out


def test_empty_folder_exits_2(tmp_path, capsys):
    assert main(["dataset", "list", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no audio files" in err and str(tmp_path) in err


def test_show_prints_every_label_and_the_prompt(songs, capsys):
    assert main(["dataset", "show", str(songs), "a.wav"]) == 0
    out = capsys.readouterr().out
    assert 'caption: "json caption"' in out and "bpm: 100" in out and 'mood (extra): "dark"' in out
    assert "# Caption\njson caption\n\n# Metas\n- bpm: 100\n" in out
    assert "# Lyric\n[Instrumental]<|endoftext|>" in out
    assert main(["dataset", "show", str(songs), "nope.wav"]) == 2


def test_edit_merges_into_the_json_sidecar(songs, capsys):
    audio_before = (songs / "a.wav").read_bytes()
    args = ["dataset", "edit", str(songs), "a.wav", "--bpm", "128", "--keyscale", "F# minor", "--timesignature",
            "3/4", "--not-instrumental", "--prompt-override", "genre", "--set", "rating=5",
            "--set", "vocal_language=de", "--set", "note=hello world"]
    assert main(args) == 0
    data = json.loads((songs / "a.json").read_text())
    assert data == {"caption": "json caption", "bpm": 128, "keyscale": "F# minor", "timesignature": "3",
                    "language": "de", "is_instrumental": False, "prompt_override": "genre", "mood": "dark",
                    "rating": 5, "note": "hello world"}
    assert (songs / "a.wav").read_bytes() == audio_before
    assert main(["dataset", "edit", str(songs), "a.wav", "--unset", "mood", "--set", "bpm=null",
                 "--prompt-override", "none"]) == 0
    data = json.loads((songs / "a.json").read_text())
    assert "mood" not in data and "bpm" not in data and "prompt_override" not in data and data["rating"] == 5
    capsys.readouterr()
    assert main(["dataset", "edit", str(songs), "sub/b.flac", "--language", "xx"]) == 2
    assert "not an ACE-Step language code" in capsys.readouterr().err
    assert not (songs / "sub" / "b.json").exists()
    assert main(["dataset", "edit", str(songs), "sub/b.flac"]) == 2
    assert "nothing to change" in capsys.readouterr().err


def test_edit_refuses_a_broken_sidecar(songs, capsys):
    _touch(songs / "a.json", "[1, 2")
    assert main(["dataset", "edit", str(songs), "a.wav", "--bpm", "90"]) == 2
    assert str(songs / "a.json") in capsys.readouterr().err
    assert (songs / "a.json").read_text() == "[1, 2"


def test_export_then_import_keeps_unknown_keys(songs, tmp_path, capsys):
    out = tmp_path / "export.json"
    assert main(["dataset", "export", str(songs), str(out), "--tag", "zx", "--tag-position", "append",
                 "--genre-ratio", "50"]) == 0
    data = json.loads(out.read_text())
    assert data["metadata"]["custom_tag"] == "zx" and data["metadata"]["genre_ratio"] == 50
    assert [s["filename"] for s in data["samples"]] == ["a.wav", "b.flac"]
    assert data["samples"][0]["mood"] == "dark"
    assert main(["dataset", "export", str(songs), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err

    copy = tmp_path / "copy"
    _touch(copy / "a.wav")
    _touch(copy / "sub" / "b.flac")
    data["samples"][0]["extra_field"] = {"kept": True}
    for sample in data["samples"]:
        sample["audio_path"] = "/somewhere/else/" + sample["filename"]
    _touch(tmp_path / "edited.json", json.dumps(data))
    assert main(["dataset", "import", str(tmp_path / "edited.json"), str(copy)]) == 0
    out_text = capsys.readouterr().out
    assert "wrote 2 sidecar(s)" in out_text and "'zx'" in out_text
    a = json.loads((copy / "a.json").read_text())
    assert (a["caption"], a["mood"], a["extra_field"]) == ("json caption", "dark", {"kept": True})
    assert a["keyscale"] == "A minor"  # from the CSV of the exported folder

    data["samples"][0]["caption"] = "changed"
    _touch(tmp_path / "edited.json", json.dumps(data))
    assert main(["dataset", "import", str(tmp_path / "edited.json"), str(copy)]) == 2
    assert "a.wav: caption" in capsys.readouterr().err
    assert main(["dataset", "import", str(tmp_path / "edited.json"), str(copy), "--overwrite"]) == 0
    assert json.loads((copy / "a.json").read_text())["caption"] == "changed"


@pytest.fixture()
def audio_songs(tmp_path) -> Path:
    root = tmp_path / "audio"
    one = synthesize_song(seed=0, duration_s=2.5, bpm=120, key="A minor", sample_rate=RATE)
    write_audio(root / "one.wav", one, RATE)
    write_audio(root / "sub" / "two.flac", synthesize_song(seed=1, duration_s=1.2, bpm=100, sample_rate=RATE), RATE)
    _touch(root / "one.json", json.dumps({"caption": "synth", "bpm": 111, "mood": "x"}))
    return root


def test_split_writes_pieces_with_sidecars_outside_the_folder(audio_songs, tmp_path, capsys):
    before = sorted(p.relative_to(audio_songs) for p in audio_songs.rglob("*"))
    out = tmp_path / "pieces"
    assert main(["dataset", "split", str(audio_songs), str(out), "--segment", "1", "--min-segment", "0.5"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["one__part01.json", "one__part01.wav", "one__part02.json", "one__part02.wav",
                       "one__part03.json", "one__part03.wav", "sub/two__part01.flac", "sub/two__part01.json"]
    assert sorted(p.relative_to(audio_songs) for p in audio_songs.rglob("*")) == before
    assert sf.info(str(out / "one__part03.wav")).frames == RATE // 2
    assert sf.info(str(out / "sub" / "two__part01.flac")).frames == RATE
    assert json.loads((out / "one__part01.json").read_text()) == {"caption": "synth", "bpm": 111, "duration": 1,
                                                                 "mood": "x"}
    assert json.loads((out / "one__part03.json").read_text())["duration"] == 0
    assert "one.wav: 3 piece(s)" in capsys.readouterr().out

    assert main(["dataset", "split", str(audio_songs), str(out), "--segment", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["dataset", "split", str(audio_songs), str(out), "--segment", "2", "--overwrite"]) == 0
    # stale pieces of the first split are gone; the 0.5 s tail is below the default minimum (min(10, segment))
    assert sorted(p.name for p in out.glob("one__*")) == ["one__part01.json", "one__part01.wav"]
    assert "two.flac: shorter than the minimum piece of 2 s" in capsys.readouterr().out
    assert main(["dataset", "split", str(audio_songs), str(audio_songs / "sub"), "--segment", "1"]) == 2
    assert "inside the dataset folder" in capsys.readouterr().err


def test_analyze_fills_gaps_keeps_user_values_and_skips_bad_files(audio_songs, capsys):
    _touch(audio_songs / "broken.wav", "not audio at all")
    assert main(["dataset", "analyze", str(audio_songs)]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "broken.wav" in out
    one = json.loads((audio_songs / "one.json").read_text())
    assert (one["bpm"], one["caption"], one["mood"], one["duration"]) == (111, "synth", "x", 2)
    two = json.loads((audio_songs / "sub" / "two.json").read_text())
    assert two["duration"] == 1
    assert main(["dataset", "analyze", str(audio_songs), "--overwrite"]) == 0
    one = json.loads((audio_songs / "one.json").read_text())
    assert one["bpm"] != 111 and one["caption"] == "synth"


def test_analyze_fails_when_nothing_can_be_read(tmp_path, capsys):
    _touch(tmp_path / "bad.wav", "garbage")
    assert main(["dataset", "analyze", str(tmp_path)]) == 2
    assert "could be analyzed" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()


def test_show_prints_the_prompt_the_cache_is_made_from(tmp_path, capsys):
    from acetune.audio import synthesize_song, write_audio

    write_audio(tmp_path / "song.wav", synthesize_song(seed=0, duration_s=3.0, bpm=120, key="C major"), 48000)
    assert main(["dataset", "show", str(tmp_path), "song.wav"]) == 0
    assert "- duration: 3 seconds\n" in capsys.readouterr().out  # from the file, as preprocess writes it


def _peer_songs(root: Path) -> Path:
    """Side-Step song.txt files, an ACE-Step app CSV (semicolons, File, extra columns), an ace-lora-trainer
    CSV, sidecars saying "instrumental" and "English", and one song with no caption at all."""
    for name in ("side/one.wav", "side/plain.wav", "app/a.wav", "app/b.wav", "alt/x.wav", "inst.wav", "en.wav",
                 "bare.wav"):
        _touch(root / name)
    _touch(root / "side" / "one.txt", "caption: dusty boom bap\ngenre: hip hop\nbpm: 92\nkey: A minor\n"
                                      "signature: 4\nlyrics:\n[Verse 1]\nLove: it hurts\n")
    _touch(root / "side" / "plain.txt", "[Verse 1]\nLove: it hurts\n")
    _touch(root / "side" / "plain.caption.txt", "folk ballad")
    _touch(root / "app" / "metadata.csv", "File;BPM;Key;Caption;Mood\na.wav;120;D major;bright synth pop;happy\n"
                                          "b.wav;96;F# minor;dark trip hop;\n")
    _touch(root / "alt" / "captions.csv", "filename,path,caption,bpm,keyscale,timesignature,duration,genre,language\n"
                                          "x.wav,C:\\music\\x.wav,warm jazz trio,104,Bb Major,4,31,jazz,Italian\n")
    _touch(root / "inst.json", json.dumps({"caption": "ambient pads", "language": "instrumental"}))
    _touch(root / "en.json", json.dumps({"caption": "anthemic pop", "language": "English"}))
    _touch(root / "odd.wav")
    _touch(root / "odd.json", json.dumps({"caption": "chant", "language": "Elvish"}))
    return root


def test_list_reads_peer_tool_labels_and_prints_notices(tmp_path, capsys):
    root = _peer_songs(tmp_path / "songs")
    assert main(["dataset", "list", str(root)]) == 0
    out = capsys.readouterr().out
    assert "9 song(s)" in out and "problem(s)" not in out
    for text in ("dusty boom bap", "A minor", "folk ballad", "bright synth pop", "F# minor", "warm jazz trio",
                 "Bb Major", "ambient pads", "anthemic pop"):
        assert text in out
    assert "side/one.txt" in out and "app/metadata.csv" in out
    assert "3 notice(s)" in out
    assert "column 'Mood' is not a label acetune uses: kept as extra fields" in out
    assert "language 'Elvish' is not an ACE-Step language code, read as unknown" in out
    assert "bare.wav: no caption or genre: it would train on an empty caption and the metas alone" in out
    assert main(["dataset", "show", str(root), "inst.wav"]) == 0
    shown = capsys.readouterr().out
    assert 'language: "unknown"' in shown and "is_instrumental: true" in shown


def test_list_output_reads_when_piped_and_narrow(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    root = _peer_songs(tmp_path / "songs")
    assert main(["dataset", "list", str(root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no colour codes when not a terminal
    notice_block = out[out.index("3 notice(s)"):]
    assert "Elvish" in notice_block.replace("\n", " ") and "bare.wav" in notice_block


def test_export_writes_the_trigger_word_into_every_sample(tmp_path, capsys):
    root = _peer_songs(tmp_path / "songs")
    _touch(root / "en.json", json.dumps({"caption": "anthemic pop", "custom_tag": "own"}))
    out = tmp_path / "ds.json"
    assert main(["dataset", "export", str(root), str(out), "--tag", "zx-style"]) == 0
    printed = capsys.readouterr().out
    assert "bare.wav: no caption or genre: it would train on the caption 'zx-style'" in printed
    samples = {s["filename"]: s for s in json.loads(out.read_text())["samples"]}
    assert samples["en.wav"]["custom_tag"] == "own"
    assert {s["custom_tag"] for name, s in samples.items() if name != "en.wav"} == {"zx-style"}
    assert samples["inst.wav"]["is_instrumental"] is True and samples["x.wav"]["language"] == "it"
