"""Channels, resampling, truncation and loudness: the steps between a decoded file and the VAE."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from acetune.audio import (
    is_silent,
    load_audio,
    normalize,
    resample,
    sine,
    to_stereo,
    truncate,
    write_audio,
)

SR = 48_000


def _lufs(x: np.ndarray, sample_rate: int = SR) -> float:
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(x.T.astype(np.float64)))


def test_to_stereo_duplicates_mono():
    mono = sine(220.0, 0.1, SR)
    stereo = to_stereo(mono)
    assert stereo.shape == (2, mono.shape[1])
    np.testing.assert_array_equal(stereo[0], mono[0])
    np.testing.assert_array_equal(stereo[1], mono[0])


def test_to_stereo_keeps_first_two_of_many_and_leaves_stereo_alone():
    six = np.arange(6, dtype=np.float32)[:, None] * np.ones((6, 10), dtype=np.float32)
    np.testing.assert_array_equal(to_stereo(six), six[:2])
    stereo = six[:2].copy()
    np.testing.assert_array_equal(to_stereo(stereo), stereo)


def test_load_audio_mono_file_becomes_stereo(tmp_path):
    path = write_audio(tmp_path / "mono.wav", sine(440.0, 0.5, SR, 0.3), SR)
    prepared = load_audio(path)
    assert prepared.waveform.shape == (2, SR // 2)
    np.testing.assert_array_equal(prepared.waveform[0], prepared.waveform[1])


def test_load_audio_six_channel_file_keeps_first_two(tmp_path):
    levels = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=np.float32)
    six = levels[:, None] * np.ones((6, SR // 4), dtype=np.float32)
    prepared = load_audio(write_audio(tmp_path / "surround.wav", six, SR))
    assert prepared.waveform.shape == (2, SR // 4)
    np.testing.assert_array_equal(prepared.waveform[:, 0], levels[:2])


def test_resample_44k1_to_48k_keeps_length_and_pitch(peak_frequency):
    tone = sine(1000.0, 2.0, 44_100, 0.5)
    out = resample(tone, 44_100, 48_000)
    assert out.dtype == np.float32
    assert abs(out.shape[1] - 96_000) <= 1
    assert peak_frequency(out, 48_000) == pytest.approx(1000.0, abs=1.0)
    assert resample(tone, 44_100, 44_100) is tone


def test_load_audio_resamples_a_44k1_file(tmp_path, peak_frequency):
    path = write_audio(tmp_path / "cd.flac", np.repeat(sine(1000.0, 1.0, 44_100, 0.5), 2, axis=0), 44_100)
    prepared = load_audio(path)
    assert prepared.sample_rate == 48_000
    assert abs(prepared.waveform.shape[1] - 48_000) <= 1
    assert peak_frequency(prepared.waveform, 48_000) == pytest.approx(1000.0, abs=1.0)
    assert prepared.source_duration_s == pytest.approx(1.0)


def test_truncate_keeps_the_start():
    ramp = np.linspace(0, 1, 3 * SR, dtype=np.float32)[None, :]
    np.testing.assert_array_equal(truncate(ramp, SR, 1.0), ramp[:, :SR])
    assert truncate(ramp, SR, None) is ramp
    assert truncate(ramp, SR, 0) is ramp
    with pytest.raises(ValueError, match="max_duration_s"):
        truncate(ramp, SR, -1.0)


def test_load_audio_truncates_and_reports_the_whole_duration(tmp_path, song):
    path = write_audio(tmp_path / "song.wav", song, SR)
    short = load_audio(path, max_duration_s=1.5)
    assert short.truncated is True
    assert short.source_duration_s == pytest.approx(4.0)
    np.testing.assert_array_equal(short.waveform, song[:, : int(1.5 * SR)])
    full = load_audio(path, max_duration_s=None)
    assert full.truncated is False
    np.testing.assert_array_equal(full.waveform, song)


def test_load_audio_does_not_clamp(tmp_path):
    loud = np.full((2, 1000), 1.5, dtype=np.float32)
    prepared = load_audio(write_audio(tmp_path / "hot.wav", loud, SR))  # float wav keeps 1.5
    assert float(prepared.waveform.max()) == pytest.approx(1.5)


def test_peak_normalisation_hits_minus_1_dbfs(song):
    result = normalize(song * 0.1, SR, "peak")
    assert float(np.max(np.abs(result.waveform))) == pytest.approx(10 ** (-1 / 20), rel=1e-5)
    assert result.gain_db == pytest.approx(20 * np.log10(10 ** (-1 / 20) / np.max(np.abs(song * 0.1))), abs=1e-4)
    assert result.note is None


def test_lufs_normalisation_hits_minus_14(song):
    quiet = song * 0.1
    result = normalize(quiet, SR, "lufs")
    assert result.note is None
    assert _lufs(result.waveform) == pytest.approx(-14.0, abs=0.5)
    assert result.gain_db == pytest.approx(-14.0 - _lufs(quiet), abs=0.01)


def test_lufs_normalisation_that_would_clip_is_peak_limited_and_says_so():
    clicks = np.zeros((2, 3 * SR), dtype=np.float32)
    clicks[:, :: SR // 2] = 0.5  # a very high crest factor: -14 LUFS would need a peak far above 0 dBFS
    result = normalize(clicks, SR, "lufs")
    assert result.note is not None and "clip" in result.note
    assert float(np.max(np.abs(result.waveform))) == pytest.approx(10 ** (-1 / 20), rel=1e-5)


@pytest.mark.parametrize("mode", ["peak", "lufs"])
def test_silence_is_left_alone_with_a_note(mode):
    silence = np.zeros((2, SR), dtype=np.float32)
    result = normalize(silence, SR, mode)
    assert result.waveform is silence
    assert result.gain_db == 0.0
    assert result.note is not None and "silent" in result.note


def test_too_short_for_lufs_is_left_alone_with_a_note(song):
    clip = song[:, : SR // 10]
    result = normalize(clip, SR, "lufs")
    assert result.waveform is clip
    assert result.note is not None and "too short" in result.note


def test_unknown_normalization_names_the_choices(song, tmp_path):
    with pytest.raises(ValueError, match="none, peak, lufs"):
        normalize(song, SR, "loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="none, peak, lufs"):
        load_audio(tmp_path / "never_read.wav", normalize="loud")  # type: ignore[arg-type]


def test_load_audio_normalises_and_passes_the_note_on(tmp_path):
    path = write_audio(tmp_path / "silence.wav", np.zeros((2, SR), dtype=np.float32), SR)
    prepared = load_audio(path, normalize="peak")
    assert len(prepared.notes) == 1 and "silent" in prepared.notes[0]
    tone = write_audio(tmp_path / "tone.wav", sine(440.0, 1.0, SR, 0.1), SR)
    peaked = load_audio(tone, normalize="peak")
    assert float(np.max(np.abs(peaked.waveform))) == pytest.approx(10 ** (-1 / 20), rel=1e-5)
    assert peaked.notes == ()


def test_is_silent():
    assert is_silent(np.zeros((2, 100), dtype=np.float32))
    assert is_silent(np.full((2, 100), 5e-7, dtype=np.float32))
    assert not is_silent(np.full((2, 100), 2e-6, dtype=np.float32))
    assert not is_silent(sine(440.0, 0.01, SR, 0.5))
