"""Preprocessing's options are the `preprocess` section of the one typed config: its closed choices and limits
are declared in acetune/config and checked by the strict loader, before any model loads."""

from __future__ import annotations

import pytest

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main
from acetune.config import LatentMode, PreprocessConfig, TimbreReference, resolve_config
from acetune.data.preprocess import preprocess, resolve_options
from acetune.data.dataset import scan_dataset
from acetune.errors import ConfigError


@pytest.fixture()
def songs(tmp_path):
    write_audio(tmp_path / "songs" / "a.wav", synthesize_song(seed=0, duration_s=2.0, bpm=120, key="C major"), 48000)
    return tmp_path / "songs"


def _preprocess(tmp_path, songs, *extra):
    return main(["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "cache"), *extra])


def test_options_made_in_code_with_a_misspelt_choice_are_a_named_error_before_any_model_loads(tmp_path, songs):
    with pytest.raises(ConfigError, match="preprocess.latent_mode must be one of sample, mean, got 'samp' .*"
                                          "did you mean 'sample'"):
        next(preprocess(scan_dataset(songs).dataset, tmp_path / "missing", tmp_path / "cache",
                        PreprocessConfig(latent_mode="samp")))
    assert not (tmp_path / "cache").exists()


def test_choices_given_as_text_become_the_configs_enums():
    options = resolve_options(PreprocessConfig(latent_mode="mean", timbre_reference="zero-frame", device="cpu"))
    assert options.latent_mode is LatentMode.MEAN and options.timbre_reference is TimbreReference.ZERO_FRAME
    assert options.precision.value == "fp32" and options.device == "cpu"  # auto made concrete for the fingerprint


def test_a_bad_timbre_reference_flag_names_the_closest_choice(tmp_path, songs, capsys):
    assert _preprocess(tmp_path, songs, "--timbre-reference", "zero") == 2
    err = capsys.readouterr().err
    assert "--timbre-reference 'zero' is not one of silence, zero-frame" in err and "did you mean zero-frame?" in err
    assert "Traceback" not in err


def test_a_misspelt_set_key_names_the_closest_key(tmp_path, songs, capsys):
    assert _preprocess(tmp_path, songs, "--set", "preprocess.latent_mod=mean") == 2
    err = capsys.readouterr().err
    assert "error: --set: unknown key preprocess.latent_mod; did you mean preprocess.latent_mode?" in err
    assert "fix: valid keys in preprocess:" in err and "Traceback" not in err


def test_a_bad_set_value_names_the_key_and_the_valid_values(tmp_path, songs, capsys):
    assert _preprocess(tmp_path, songs, "--set", "preprocess.latent_mode=meen") == 2
    err = capsys.readouterr().err
    assert "preprocess.latent_mode must be one of sample, mean, got 'meen'" in err and "did you mean 'mean'" in err
    assert "fix: use one of: sample, mean" in err
    assert _preprocess(tmp_path, songs, "--set", "preprocess.chunk_s=0") == 2
    assert "preprocess.chunk_s = 0.0 must be > 0" in capsys.readouterr().err


def test_a_config_file_carries_preprocess_options_and_flags_override_it(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[preprocess]\nlatent_mode = "mean"\nseed = 7\ntwo_pass = true\n\n[adapter]\nrank = 8\n')
    config = resolve_config(files=[path], overrides=["preprocess.seed=9"])
    assert config.preprocess == PreprocessConfig(latent_mode=LatentMode.MEAN, seed=9, two_pass=True)
    assert config.adapter.rank == 8  # one file for both commands: train reads its sections, preprocess its own


def test_a_user_preset_carries_preprocess_options(tmp_path):
    (tmp_path / "lowmem.toml").write_text('description = "two passes"\n[preprocess]\ntwo_pass = true\n'
                                          'save_dtype = "bf16"\n')
    config = resolve_config(preset="lowmem", presets_dir=tmp_path)
    assert config.preprocess.two_pass and config.preprocess.save_dtype.value == "bf16"


def test_a_config_files_preprocess_table_reaches_the_command(tmp_path, songs, capsys):
    path = tmp_path / "run.toml"
    path.write_text('[preprocess]\nnormalize = "loud"\n')
    assert _preprocess(tmp_path, songs, "--config", str(path)) == 2
    err = capsys.readouterr().err
    assert f"{path}: preprocess.normalize must be one of none, peak, lufs, got 'loud'" in err
