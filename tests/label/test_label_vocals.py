"""--isolate-vocals: demucs separates the song and Whisper hears only the stem named "vocals", at 16 kHz;
a tiny random demucs model built from constructor arguments stands in for htdemucs (no weights here)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from acetune.audio import load_audio, resample
from acetune.cli.app import main
from acetune.errors import ConfigError, ModelLoadError
from acetune.label.vocals import VocalIsolator, open_separator
from acetune.label.whisper import WHISPER_RATE, WhisperLabeller
from tests.label.conftest import write_songs

SOURCES = ["drums", "vocals", "bass", "other"]  # vocals not last: the stem is found by name


def tiny_demucs(samplerate: int = 44100, sources: list[str] = SOURCES):
    """demucs' waveform Demucs class at its smallest (about 1,500 random weights)."""
    from demucs.demucs import Demucs

    torch.manual_seed(0)
    return Demucs(sources=sources, channels=4, depth=2, lstm_layers=0, rewrite=False, dconv_comp=2,
                  samplerate=samplerate, segment=2)


@pytest.fixture()
def spies(monkeypatch):
    """Records demucs' outermost apply_model calls (input mix, output stems); it calls itself per chunk."""
    import demucs.apply

    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = demucs.apply.apply_model
    depth = [0]

    def recording(model, mix, **kwargs):
        depth[0] += 1
        try:
            out = real(model, mix, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            calls.append((mix.clone(), out.clone()))
        return out

    monkeypatch.setattr(demucs.apply, "apply_model", recording)
    return calls


@pytest.mark.parametrize("rate", [44100, 22050])
def test_whisper_hears_the_vocals_stem_at_16_khz(rate, spies, tiny_whisper, tmp_path):
    path = write_songs(tmp_path, {"a.wav": {}})["a.wav"]  # 1.5 s at 48 kHz
    labeller = WhisperLabeller(str(tiny_whisper), device=torch.device("cpu"), dtype=torch.float32,
                               isolator=VocalIsolator(tiny_demucs(rate), "tiny", torch.device("cpu")))
    heard = []
    asr = labeller.asr
    labeller.asr = lambda inputs, **kw: heard.append(dict(inputs)) or asr(inputs, **kw)  # the pipeline pops keys
    labeller.propose(path)

    [(mix, stems)] = spies
    song = load_audio(path, sample_rate=rate, max_duration_s=None).waveform
    assert mix.shape == (1, 2, int(1.5 * rate))  # demucs ran at the model's rate
    assert abs(float(mix.mean(1).mean())) < 1e-5 and float(mix.mean(1).std()) == pytest.approx(1.0, abs=1e-4)
    ref = torch.from_numpy(song).mean(0)
    scale, shift = float(ref.std()) + 1e-8, float(ref.mean())

    def as_whisper_input(stem: str) -> np.ndarray:
        wave = stems[0, SOURCES.index(stem)].numpy() * scale + shift
        return resample(wave, rate, WHISPER_RATE).mean(axis=0)

    [given] = heard
    assert given["sampling_rate"] == WHISPER_RATE and given["raw"].shape == (int(1.5 * WHISPER_RATE),)
    np.testing.assert_allclose(given["raw"], as_whisper_input("vocals"), atol=1e-5)
    for other in ("drums", "bass", "other"):
        assert not np.allclose(given["raw"], as_whisper_input(other), atol=1e-3)
    assert labeller.settings["separator"] == "tiny" and labeller.detail.endswith("vocals isolated with tiny")


def test_without_isolation_whisper_hears_the_song_and_settings_are_unchanged(tiny_whisper, tmp_path):
    labeller = WhisperLabeller(str(tiny_whisper), device=torch.device("cpu"), dtype=torch.float32)
    path = write_songs(tmp_path, {"a.wav": {}})["a.wav"]
    expected = load_audio(path, sample_rate=WHISPER_RATE, max_duration_s=None).waveform.mean(axis=0)
    np.testing.assert_array_equal(labeller.heard(path), expected)
    assert "separator" not in labeller.settings  # songs labelled before this option are not redone


def test_a_separator_without_vocals_is_refused():
    with pytest.raises(ModelLoadError, match="has no vocals stem \\(its stems: drums, bass\\)") as info:
        VocalIsolator(tiny_demucs(sources=["drums", "bass"]), "drumsep", torch.device("cpu"))
    assert "--separator htdemucs" in info.value.fix


def test_missing_demucs_is_a_named_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "demucs", None)  # `import demucs...` now raises ImportError
    with pytest.raises(ConfigError, match="needs the demucs stem separator") as info:
        open_separator(None, torch.device("cpu"))
    assert info.value.fix.startswith("pip install 'acetune[separate]'")


def test_a_missing_local_model_file_names_it(tmp_path):
    with pytest.raises(ModelLoadError, match="separator model file not found") as info:
        open_separator(str(tmp_path / "nope.th"), torch.device("cpu"))
    assert info.value.path == tmp_path / "nope.th"


def save_demucs(model, path) -> None:
    """demucs' model package format (what `demucs.states.load_model` reads): class, arguments, weights."""
    args, kwargs = model._init_args_kwargs
    torch.save({"klass": type(model), "args": args, "kwargs": kwargs, "state": model.state_dict()}, path)


def test_cli_isolates_vocals_with_a_local_model(tiny_whisper, spies, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    songs = tmp_path / "songs"
    paths = write_songs(songs, {"a.wav": {}})
    save_demucs(tiny_demucs(), tmp_path / "tinysep.th")
    argv = ["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path), "--with", "whisper",
            "--whisper", str(tiny_whisper), "--device", "cpu", "--language", "en"]
    assert main([*argv, "--isolate-vocals", "--separator", str(tmp_path / "tinysep.th")]) == 0
    out = capsys.readouterr().out
    assert "whisper: whisper-tiny on cpu, language en, vocals isolated with tinysep.th" in out
    assert "a.wav: wrote lyrics=" in out and len(spies) == 1
    runs = json.loads(paths["a.wav"].with_suffix(".json").read_text())["label_runs"]
    assert list(runs) == ["whisper:whisper-tiny"]


def test_cli_flag_errors(tiny_whisper, tmp_path, capsys, monkeypatch):
    songs = tmp_path / "songs"
    write_songs(songs, {"a.wav": {}})
    argv = ["dataset", "label", str(songs), "--checkpoint-dir", str(tmp_path)]
    assert main([*argv, "--isolate-vocals"]) == 2
    assert "--isolate-vocals only changes what Whisper hears" in capsys.readouterr().err
    assert main([*argv, "--with", "whisper", "--separator", "htdemucs_ft"]) == 2
    assert "--separator htdemucs_ft is used only with --isolate-vocals" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "demucs", None)
    assert main([*argv, "--with", "whisper", "--whisper", str(tiny_whisper), "--isolate-vocals"]) == 2
    err = capsys.readouterr().err
    assert "needs the demucs stem separator" in err and "pip install 'acetune[separate]'" in err
