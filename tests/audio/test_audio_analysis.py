"""BPM, key and meter estimates on synthetic material whose truth we know.

BPM: the test asks for 120 +/- 2 with no tempo-octave allowance (60 or 240 fails), because
`analyze_audio` does no octave folding and librosa's tempo prior centres on 120.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from acetune.audio import AudioAnalysis, analyze_audio, estimate_key, noise, sine, synthesize_song
from acetune.errors import AudioError

SR = 48_000


@pytest.fixture(scope="module")
def c_major_120() -> AudioAnalysis:
    """The analysis of 20 s of the synthetic 120 BPM C-major song (4/4), run once for the module."""
    return analyze_audio(synthesize_song(seed=1, duration_s=20.0, bpm=120.0, key="C major", sample_rate=SR), SR)


def _accent_track(beats_per_bar: int, bpm: float = 100.0, duration_s: float = 20.0) -> np.ndarray:
    """Clicks on every beat: a loud low thump on the first of each bar, quiet ticks on the others."""
    track = np.zeros(int(duration_s * SR), dtype=np.float32)
    beat = 60.0 / bpm
    thump = sine(80.0, 0.15, SR, 0.9)[0] * np.exp(-np.arange(int(0.15 * SR)) / (0.04 * SR))
    for index in range(int(duration_s / beat)):
        start = int(round(index * beat * SR))
        tick = noise(0.05, SR, seed=index, amplitude=0.2)[0] * np.exp(-np.arange(int(0.05 * SR)) / (0.01 * SR))
        sound = thump if index % beats_per_bar == 0 else tick
        end = min(track.size, start + sound.size)
        track[start:end] += sound[: end - start]
    return np.stack([track, track])


def test_bpm_of_a_120_bpm_song(c_major_120):
    result = c_major_120
    assert result.bpm is not None and abs(result.bpm - 120) <= 2
    assert result.duration_s == pytest.approx(20.0)


def test_key_of_a_c_major_progression(c_major_120):
    assert c_major_120.keyscale == "C major"


@pytest.mark.parametrize(("key", "bpm"), [("A minor", 120.0), ("F# minor", 96.0), ("Bb major", 96.0)])
def test_key_of_other_progressions(key, bpm):
    song = synthesize_song(seed=1, duration_s=20.0, bpm=bpm, key=key, sample_rate=SR)
    result = analyze_audio(song, SR)
    assert result.keyscale == key
    assert result.bpm is not None and abs(result.bpm - bpm) <= 2


def test_meter_of_a_four_four_song(c_major_120):
    assert c_major_120.timesignature == "4"


def test_meter_of_three_beat_bars():
    result = analyze_audio(_accent_track(3), SR)
    assert result.timesignature == "3"
    assert result.bpm is not None and abs(result.bpm - 100) <= 2


def test_silence_gives_no_estimates():
    result = analyze_audio(np.zeros((2, 2 * SR), dtype=np.float32), SR)
    assert (result.bpm, result.keyscale, result.timesignature) == (None, None, None)
    assert result.duration_s == pytest.approx(2.0)


def test_clip_under_one_second_gives_no_estimates():
    result = analyze_audio(synthesize_song(seed=0, duration_s=0.5, bpm=120.0), SR)
    assert (result.bpm, result.keyscale, result.timesignature) == (None, None, None)
    assert result.duration_s == pytest.approx(0.5)


def test_non_finite_waveform_is_refused():
    bad = np.zeros((2, SR), dtype=np.float32)
    bad[1, 5] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        analyze_audio(bad, SR)


def test_key_names_use_the_documented_spelling():
    # a chroma that is exactly a rotated profile must come back as that key, spelled our way
    major = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
    minor = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
    assert estimate_key(np.roll(major, 10)) == "Bb major"
    assert estimate_key(np.roll(major, 3)) == "Eb major"
    assert estimate_key(np.roll(minor, 6)) == "F# minor"
    assert estimate_key(np.roll(minor, 1)) == "C# minor"
    assert estimate_key(np.roll(minor, 8)) == "G# minor"
    assert estimate_key(np.ones(12)) is None


def test_missing_librosa_is_an_audio_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)  # makes `import librosa` raise ImportError
    with pytest.raises(AudioError, match="librosa is not installed") as caught:
        analyze_audio(np.zeros((2, SR), dtype=np.float32), SR)
    assert "acetune[analysis]" in str(caught.value)


def test_package_import_does_not_import_librosa():
    import subprocess

    code = "import sys, acetune.audio; print('librosa' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
