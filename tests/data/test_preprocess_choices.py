"""Preprocessing's closed choices are checked when the options are made, before any model loads."""

from __future__ import annotations

import pytest

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main
from acetune.data.preprocess import PreprocessConfig
from acetune.errors import ConfigError


def test_a_misspelt_latent_mode_names_the_closest_choice():
    with pytest.raises(ConfigError, match="--latent-mode 'samp' is not one of sample, mean; did you mean 'sample'"):
        PreprocessConfig(latent_mode="samp")


def test_a_bad_timbre_reference_is_a_named_error_before_the_models_load(tmp_path, capsys):
    write_audio(tmp_path / "songs" / "a.wav", synthesize_song(seed=0, duration_s=2.0, bpm=120, key="C major"), 48000)
    code = main(["preprocess", "--audio-dir", str(tmp_path / "songs"), "--checkpoint-dir", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "cache"), "--timbre-reference", "zero"])
    assert code == 2
    assert "--timbre-reference 'zero' is not one of silence, zero-frame; did you mean 'zero-frame'" \
        in capsys.readouterr().err
