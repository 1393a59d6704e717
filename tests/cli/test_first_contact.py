"""A musician's first folder: the peers' label files, odd language values and one broken file, through the CLI.

The good songs are cached with the captions their label files give; the broken one is named with its
reason; the run finishes with exit code 3 (a partial cache) and no traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main
from acetune.data.cache import CacheReader


def _song(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, synthesize_song(seed=seed, duration_s=3.0, bpm=100, key="C major"), 48000)


def mixed_folder(root: Path) -> Path:
    _song(root / "side" / "one.wav", 0)  # Side-Step's song.txt ("Option A")
    (root / "side" / "one.txt").write_text("caption: dusty boom bap\ngenre: hip hop\nbpm: 92\nkey: A minor\n"
                                           "signature: 4\nlyrics:\n[Verse 1]\nLove: it hurts\n")
    _song(root / "app" / "a.wav", 1)  # the ACE-Step app's CSV: semicolons, a File column, an extra column
    (root / "app" / "metadata.csv").write_text("File;BPM;Key;Caption;Mood\na.wav;120;D major;bright synth pop;happy\n")
    _song(root / "inst.wav", 2)  # a sidecar whose language is not an ACE-Step code
    (root / "inst.json").write_text(json.dumps({"caption": "ambient pads", "language": "instrumental"}))
    cut = root / "cut.wav"  # a truncated file: 0.03 s
    write_audio(cut, np.zeros((2, 1440), dtype=np.float32), 48000)
    return root


def test_a_mixed_folder_preprocesses_without_a_traceback(tiny_bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    songs = mixed_folder(tmp_path / "songs")
    cache = tmp_path / "cache"
    code = main(["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tiny_bundle), "--out", str(cache)])
    captured = capsys.readouterr()
    assert code == 3, captured
    assert "Traceback" not in captured.out + captured.err
    assert "cut.wav" in captured.out and "too short" in captured.out
    entries = {entry.id: entry.metadata for entry in CacheReader(cache).entries}
    assert sorted(entries) == ["app/a.wav", "inst.wav", "side/one.wav"]
    assert entries["side/one.wav"]["caption"] == "dusty boom bap" and entries["side/one.wav"]["bpm"] == 92
    assert "Love: it hurts" in entries["side/one.wav"]["lyrics"]
    assert entries["app/a.wav"]["caption"] == "bright synth pop" and entries["app/a.wav"]["keyscale"] == "D major"
    assert entries["inst.wav"]["caption"] == "ambient pads" and entries["inst.wav"]["language"] == "unknown"
