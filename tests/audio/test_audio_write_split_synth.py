"""Writing files safely, cutting into segments, and the synthetic song being deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from acetune.audio import decode_audio, noise, sine, split_waveform, synthesize_song, write_audio
from acetune.errors import AudioError

SR = 48_000


def test_write_refuses_to_overwrite(tmp_path, song):
    path = write_audio(tmp_path / "take.flac", song, SR)
    before = path.read_bytes()
    with pytest.raises(AudioError, match="already exists") as caught:
        write_audio(path, song * 0.5, SR)
    assert "take.flac" in str(caught.value)
    assert "--overwrite" in str(caught.value)
    assert path.read_bytes() == before
    write_audio(path, song * 0.5, SR, overwrite=True)
    assert path.read_bytes() != before


def test_write_leaves_no_temp_files(tmp_path, song):
    for ext in ("wav", "m4a", "opus"):
        write_audio(tmp_path / f"take.{ext}", song, SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.m4a", "take.opus", "take.wav"]


def test_write_refuses_unsupported_suffix(tmp_path, song):
    with pytest.raises(AudioError, match="'.xyz'") as caught:
        write_audio(tmp_path / "take.xyz", song, SR)
    assert "take.xyz" in str(caught.value)
    assert not (tmp_path / "take.xyz").exists()


def test_opus_is_written_at_48k(tmp_path):
    tone = np.repeat(sine(1000.0, 1.0, 44_100, 0.5), 2, axis=0)
    waveform, rate = decode_audio(write_audio(tmp_path / "tone.opus", tone, 44_100))
    assert rate == 48_000
    assert abs(waveform.shape[1] - 48_000) <= 0.05 * 48_000


def test_pyav_formats_refuse_more_than_two_channels(tmp_path):
    with pytest.raises(AudioError, match="1 or 2 channels"):
        write_audio(tmp_path / "surround.m4a", np.zeros((6, SR), dtype=np.float32), SR)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_nan(tmp_path):
    bad = np.zeros((2, 10), dtype=np.float32)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_audio(tmp_path / "bad.wav", bad, SR)


def test_split_lengths_and_dropped_tail():
    x = np.zeros((2, 65 * 100), dtype=np.float32)  # 65 s at 100 Hz
    pieces = split_waveform(x, 100, segment_s=30.0, min_segment_s=10.0)
    assert [p.shape for p in pieces] == [(2, 3000), (2, 3000)]  # the 5 s tail is dropped
    kept = split_waveform(x, 100, segment_s=30.0, min_segment_s=5.0)
    assert [p.shape[1] for p in kept] == [3000, 3000, 500]  # a 5 s tail is long enough here


def test_split_is_consecutive_from_the_start():
    ramp = np.arange(25, dtype=np.float32)[None, :]
    pieces = split_waveform(ramp, 1, segment_s=10.0, min_segment_s=5.0)
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), ramp)
    assert split_waveform(ramp[:, :4], 1, segment_s=10.0, min_segment_s=5.0) == []


@pytest.mark.parametrize(
    ("segment_s", "min_segment_s"), [(0.0, 0.0), (-5.0, 1.0), (10.0, 0.0), (10.0, 20.0)]
)
def test_split_validates_arguments(segment_s, min_segment_s):
    with pytest.raises(ValueError):
        split_waveform(np.zeros((2, 100), dtype=np.float32), 10, segment_s, min_segment_s)


def test_synth_is_deterministic_stereo_at_minus_3_dbfs():
    a = synthesize_song(seed=7, duration_s=2.0, bpm=100.0, key="A minor")
    b = synthesize_song(seed=7, duration_s=2.0, bpm=100.0, key="A minor")
    c = synthesize_song(seed=8, duration_s=2.0, bpm=100.0, key="A minor")
    assert a.shape == (2, 96_000) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # panned, not dual mono
    assert 20 * np.log10(np.max(np.abs(a))) == pytest.approx(-3.0, abs=0.01)


def test_synth_rejects_unknown_key():
    with pytest.raises(ValueError, match="key"):
        synthesize_song(seed=0, duration_s=1.0, bpm=120.0, key="H dorian")


def test_sine_and_noise_helpers(peak_frequency):
    tone = sine(440.0, 0.5, SR, 0.25)
    assert tone.shape == (1, SR // 2) and tone.dtype == np.float32
    assert float(np.max(np.abs(tone))) == pytest.approx(0.25, rel=1e-3)
    assert peak_frequency(tone, SR) == pytest.approx(440.0, abs=2.0)
    hiss = noise(0.5, SR, seed=1, amplitude=0.1)
    np.testing.assert_array_equal(hiss, noise(0.5, SR, seed=1, amplitude=0.1))
    assert float(np.max(np.abs(hiss))) <= 0.1
    assert not np.array_equal(hiss, noise(0.5, SR, seed=2, amplitude=0.1))
