"""Estimate BPM, key and time signature for captions and metas; estimates, not ground truth.

librosa is an optional extra (`acetune[analysis]`), imported only when a function here runs.
Audio is mixed to mono and resampled to 22050 Hz first, which keeps a 4-minute song to a few seconds.

Conventions (the strings go straight into ACE-Step's metas block):
- keyscale: "<tonic> major|minor" with the tonic spelled C, C#, D, Eb, E, F, F#, G, G#, A, Bb, B in
  both modes (sharps for C#/F#/G#, flats for Eb/Bb), e.g. "C major", "F# minor", "Bb major".
- timesignature: beats per bar as ACE-Step's metas write it, "4" or "3"; None when the accents are ambiguous.
- bpm: from the tracked beats, as librosa's tempo prior (centred on 120) picks the tempo octave; no folding
  into a range, so half- or double-tempo answers are possible on sparse or busy material.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import soxr

from acetune.errors import AudioError

ANALYSIS_SAMPLE_RATE = 22_050
_HOP = 512
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first; the profiles of the Krumhansl-Schmuckler algorithm.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_MIN_DURATION_S = 1.0
_MIN_BEATS_FOR_BPM = 4
_MIN_BEATS_FOR_METER = 12  # three bars of four
_METER_MARGIN = 0.25  # how much one accent period must out-correlate the other before we name it


@dataclass(frozen=True)
class AudioAnalysis:
    bpm: int | None
    keyscale: str | None
    timesignature: str | None
    duration_s: float


def analyze_audio(waveform: np.ndarray, sample_rate: int) -> AudioAnalysis:
    """Estimate tempo, key and meter of `waveform` [C, S] (or [S]); fields are None where nothing is found.

    Silence and clips under one second give all-None estimates rather than noise dressed up as a key.
    """
    librosa = _import_librosa()
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim not in (1, 2) or sample_rate <= 0:
        raise ValueError(f"expected a waveform [channels, samples] and a positive rate, got {x.shape}, {sample_rate}")
    if not np.isfinite(x).all():
        raise ValueError("waveform contains NaN or Inf; decode_audio rejects such files")
    mono = x if x.ndim == 1 else x.mean(axis=0)
    duration_s = mono.size / sample_rate
    if duration_s < _MIN_DURATION_S or float(np.max(np.abs(mono))) < 1e-6:
        return AudioAnalysis(None, None, None, duration_s)
    y = soxr.resample(mono, sample_rate, ANALYSIS_SAMPLE_RATE).astype(np.float32)
    onset_env = librosa.onset.onset_strength(y=y, sr=ANALYSIS_SAMPLE_RATE, hop_length=_HOP)
    _, beats = librosa.beat.beat_track(onset_envelope=onset_env, sr=ANALYSIS_SAMPLE_RATE, hop_length=_HOP)
    beats = np.asarray(beats, dtype=int)
    chroma = librosa.feature.chroma_stft(y=y, sr=ANALYSIS_SAMPLE_RATE, hop_length=_HOP)  # [12, T]
    return AudioAnalysis(
        bpm=_bpm_from_beats(beats),
        keyscale=estimate_key(chroma.mean(axis=1)),
        timesignature=_meter_from_accents(onset_env, beats),
        duration_s=duration_s,
    )


def estimate_key(chroma: np.ndarray) -> str | None:
    """Best of the 24 rotated major/minor profiles by Pearson correlation with a 12-bin chroma (C first)."""
    chroma = np.asarray(chroma, dtype=np.float64)
    if chroma.shape != (12,) or np.std(chroma) == 0 or not np.isfinite(chroma).all():
        return None
    best, best_score = None, -np.inf
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
            score = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
            if score > best_score:
                best, best_score = f"{_NAMES[tonic]} {mode}", score
    return best


def _bpm_from_beats(beats: np.ndarray) -> int | None:
    """Tempo from a least-squares line through the beat times.

    librosa's global tempo is quantised to whole autocorrelation lags (at hop 512, 117.5 or 123.0, never
    120), while the slope through many tracked beats averages that quantisation away.
    """
    if beats.size < _MIN_BEATS_FOR_BPM:
        return None
    times = beats * _HOP / ANALYSIS_SAMPLE_RATE
    period = float(np.polyfit(np.arange(times.size), times, 1)[0])
    return int(round(60.0 / period)) if period > 0 else None


def _meter_from_accents(onset_env: np.ndarray, beats: np.ndarray) -> str | None:
    """"4" or "3" from how beat strengths repeat: bars of four correlate at lag 4, bars of three at lag 3."""
    if beats.size < _MIN_BEATS_FOR_METER:
        return None
    strengths = np.array([onset_env[max(0, b - 2) : b + 3].max() for b in beats])
    spread = strengths.std()
    if spread == 0:
        return None
    z = (strengths - strengths.mean()) / spread
    lag3 = float(np.mean(z[:-3] * z[3:]))
    lag4 = float(np.mean(z[:-4] * z[4:]))
    if lag4 > 0 and lag4 - lag3 > _METER_MARGIN:
        return "4"
    if lag3 > 0 and lag3 - lag4 > _METER_MARGIN:
        return "3"
    return None


def _import_librosa() -> ModuleType:
    try:
        import librosa
    except ImportError as error:
        raise AudioError("librosa is not installed", fix="pip install 'acetune[analysis]'") from error
    return librosa
