"""`acetune generate --task repaint|cover --src SONG`: edits keep the source's length and say how they were made."""

from __future__ import annotations

import json

import pytest
import soundfile

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main


@pytest.fixture()
def song(tmp_path):
    path = tmp_path / "song.wav"
    write_audio(path, synthesize_song(seed=1, duration_s=6.0, bpm=100, key="A minor"), 48000)
    return path


def _generate(tiny_bundle, out, *extra):
    return main(["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "warm lo-fi piano", "--seed", "5",
                 "--out", str(out), "--device", "cpu", *extra])


@pytest.mark.parametrize("task", ["repaint", "cover"])
def test_an_edit_renders_at_the_source_length_with_its_instruction(task, song, tiny_bundle, tmp_path):
    span = ["--start", "2", "--end", "4"] if task == "repaint" else []
    assert _generate(tiny_bundle, tmp_path / "out", "--task", task, "--src", str(song), *span) == 0
    take = tmp_path / "out" / "warm_lo-fi_piano_seed5.wav"
    audio, rate = soundfile.read(str(take))
    assert rate == 48000 and abs(audio.shape[0] - 6 * 48000) <= 1920  # the source's length, not --duration's 30 s
    sidecar = json.loads(take.with_suffix(".json").read_text())
    assert sidecar["task"] == task and sidecar["src"] == str(song)
    instruction = {"repaint": "Repaint the mask area", "cover": "Generate audio semantic tokens"}[task]
    assert sidecar["prompt"].startswith(f"# Instruction\n{instruction}")
    if task == "repaint":
        assert sidecar["span_frames"] == [50, 100]


@pytest.mark.parametrize("args, message", [
    (["--task", "repaint"], "--src is missing"),
    (["--src", "SONG"], "--src is for --task repaint or cover"),
    (["--task", "cover", "--src", "SONG", "--start", "1"], "--start and --end are for --task repaint"),
    (["--task", "repaint", "--src", "NOWHERE"], "the source song does not exist"),
    (["--task", "repaint", "--src", "SONG", "--start", "5", "--end", "9"], "is not inside the song"),
])
def test_edit_mistakes_are_named(args, message, song, tiny_bundle, tmp_path, capsys):
    args = [str(song) if a == "SONG" else str(tmp_path / "none.wav") if a == "NOWHERE" else a for a in args]
    assert _generate(tiny_bundle, tmp_path / "out", *args) == 2
    assert message in capsys.readouterr().err
