"""Shared audio fixtures: a short synthetic song and an FFT helper to check pitch survives processing."""

from __future__ import annotations

import numpy as np
import pytest

from acetune.audio import synthesize_song

SR = 48_000


@pytest.fixture(scope="session")
def song() -> np.ndarray:
    """Four seconds of the synthetic 120 BPM C-major song, [2, 192000] float32."""
    return synthesize_song(seed=0, duration_s=4.0, bpm=120.0, key="C major", sample_rate=SR)


def _peak_frequency(x: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of the first channel, with a Hann window."""
    mono = x[0] if x.ndim == 2 else x
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    return float(np.fft.rfftfreq(mono.size, 1.0 / sample_rate)[np.argmax(spectrum)])


@pytest.fixture(scope="session")
def peak_frequency():
    """The FFT-peak helper as a fixture (test folders here are not packages, so no imports from conftest)."""
    return _peak_frequency
