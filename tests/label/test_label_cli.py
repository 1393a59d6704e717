"""`acetune dataset label` in-process: what it prints and writes, `dataset show` naming each value's source,
`dataset edit` making a value the user's, and the errors (exit 2 with a fix)."""

from __future__ import annotations

import json

import pytest

from acetune.cli.app import main
from tests.label.conftest import write_songs
from tests.label.test_label_lm import ANSWER, SOURCE


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture()
def scripted_cli(monkeypatch, lm_labeller, scripted):
    """The command uses the already loaded tiny LM labeller, answering `ANSWER`."""
    scripted(ANSWER)
    monkeypatch.setattr("acetune.label.songs.open_labellers", lambda checkpoint_dir, options: [lm_labeller])


def test_label_writes_and_show_names_sources(scripted_cli, lm_bundle, tmp_path, capsys):
    songs = tmp_path / "songs"
    paths = write_songs(songs, {"a.wav": {"bpm": 120}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(lm_bundle)]) == 0
    out = capsys.readouterr().out
    assert f"a.wav: wrote caption=dusty lo-fi beat ({SOURCE})" in out
    assert "kept your bpm (pass --overwrite to replace)" in out
    assert "labelled 1, already 0, failed 0" in out
    assert json.loads(paths["a.wav"].with_suffix(".json").read_text())["caption"] == "dusty lo-fi beat"

    assert main(["dataset", "show", str(songs), "a.wav"]) == 0
    out = capsys.readouterr().out
    assert f'caption: "dusty lo-fi beat" (from {SOURCE})' in out and "bpm: 120\n" in out
    assert f"auto-labelled by: {SOURCE}" in out and "label_sources" not in out

    assert main(["dataset", "edit", str(songs), "a.wav", "--caption", "now mine"]) == 0
    assert main(["dataset", "show", str(songs), "a.wav"]) == 0
    out = capsys.readouterr().out
    assert 'caption: "now mine"\n' in out and f'keyscale: "A minor" (from {SOURCE})' in out

    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(lm_bundle), "--fields", "caption"]) == 0
    assert json.loads(paths["a.wav"].with_suffix(".json").read_text())["caption"] == "now mine"


def test_label_dry_run_and_rerun(scripted_cli, lm_bundle, tmp_path, capsys):
    songs = tmp_path / "songs"
    paths = write_songs(songs, {"a.wav": {}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(lm_bundle), "--dry-run"]) == 0
    assert "a.wav: would write caption=dusty lo-fi beat" in capsys.readouterr().out
    assert not paths["a.wav"].with_suffix(".json").exists()
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(lm_bundle)]) == 0
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(lm_bundle)]) == 0
    assert "a.wav: already labelled with these settings" in capsys.readouterr().out


def test_no_song_labelled_is_exit_2(monkeypatch, lm_labeller, scripted, lm_bundle, tmp_path, capsys):
    scripted("no labels at all")
    monkeypatch.setattr("acetune.label.songs.open_labellers", lambda checkpoint_dir, options: [lm_labeller])
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(lm_bundle)]) == 2
    captured = capsys.readouterr()
    assert "skipped" in captured.out and "a.wav" in captured.out and "holds no labels" in captured.out
    assert "no song could be labelled" in captured.err and "fix:" in captured.err


def test_missing_lm_is_exit_2_with_fix(tiny_bundle, tmp_path, capsys):
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tiny_bundle), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no 5 Hz LM here" in err and str(tiny_bundle) in err and "fix: download ACE-Step/Ace-Step1.5" in err


def test_unknown_labeller_and_field_are_exit_2(tiny_bundle, tmp_path, capsys):
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tiny_bundle), "--with", "gpt"]) == 2
    assert "--with gpt: no such labeller" in capsys.readouterr().err
    assert main(["dataset", "label", str(songs), "--checkpoint-dir", str(tiny_bundle), "--fields", "mood"]) == 2
    assert "unknown field(s): mood" in capsys.readouterr().err


def test_make_tiny_bundle_runs_the_whole_label_path_unpatched(tmp_path, capsys):
    checkpoints = tmp_path / "checkpoints"
    assert main(["model", "make-tiny", str(checkpoints), "--bundle"]) == 0
    assert (checkpoints / "acestep-5Hz-lm-tiny" / "config.json").is_file()
    assert (checkpoints / "vae" / "config.json").is_file() and (checkpoints / "acestep-v15-turbo").is_dir()
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    code = main(["dataset", "label", str(songs), "--checkpoint-dir", str(checkpoints), "--dry-run",
                 "--device", "cpu"])
    out = capsys.readouterr().out
    assert "lm: acestep-5Hz-lm-tiny on cpu (the largest that fits: needs about 0.0" in out
    assert "a.wav" in out and code in (0, 2)  # a random LM's answer is usually refused: then exit 2
    assert not (songs / "a.json").exists()
    assert main(["model", "make-tiny", str(checkpoints), "--bundle"]) == 2
    assert main(["model", "make-tiny", str(checkpoints), "--bundle", "--config", "small", "--overwrite"]) == 2


def test_label_with_whisper_and_a_given_language(tiny_whisper, tmp_path, capsys):
    songs = tmp_path / "songs"
    paths = write_songs(songs, {"a.wav": {}})
    argv = ["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path), "--with", "whisper",
            "--whisper", str(tiny_whisper), "--device", "cpu"]
    assert main([*argv, "--language", "English"]) == 0
    out = capsys.readouterr().out
    assert "whisper: whisper-tiny on cpu, language en" in out and "a.wav: wrote lyrics=" in out
    data = json.loads(paths["a.wav"].with_suffix(".json").read_text())
    assert data["label_sources"]["lyrics"] == "whisper:whisper-tiny"
    assert main([*argv, "--language", "klingon"]) == 2
    assert "--language 'klingon' is not an ACE-Step language" in capsys.readouterr().err
