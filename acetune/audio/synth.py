"""Deterministic synthetic music (numpy only) for tests and the demo: known tempo, key and length.

A song is a four-bar chord loop, a bass line on the chord roots and a drum kit on the beat grid, so
analysis tests have a ground truth and recipe tests need no audio files from the internet.
"""

from __future__ import annotations

import numpy as np

from acetune.audio.formats import TARGET_SAMPLE_RATE

# Pitch classes: sharps and flats both parse; C = 0.
_PITCH_CLASSES = {
    "C": 0, "B#": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "Fb": 4, "E#": 5, "F": 5,
    "F#": 6, "Gb": 6, "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11,
}  # fmt: skip
# One chord per bar, as (semitones above the tonic, minor triad?). Major: I-V-vi-IV. Minor: its counterpart
# i-V-VI-iv, with the harmonic-minor (major) V so the raised leading tone marks the key as minor.
_PROGRESSIONS = {
    "major": ((0, False), (7, False), (9, True), (5, False)),
    "minor": ((0, True), (7, False), (8, False), (5, True)),
}
_PEAK_DBFS = -3.0
_BEATS_PER_BAR = 4


def sine(
    frequency_hz: float, duration_s: float, sample_rate: int = TARGET_SAMPLE_RATE, amplitude: float = 0.5
) -> np.ndarray:
    """A mono sine [1, S] float32 starting at phase 0."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    return (amplitude * np.sin(2.0 * np.pi * frequency_hz * t)).astype(np.float32)[None, :]


def noise(
    duration_s: float, sample_rate: int = TARGET_SAMPLE_RATE, seed: int = 0, amplitude: float = 0.5
) -> np.ndarray:
    """Mono white noise [1, S] float32, uniform in [-amplitude, amplitude], reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    return (amplitude * rng.uniform(-1.0, 1.0, n)).astype(np.float32)[None, :]


def synthesize_song(
    *, seed: int, duration_s: float, bpm: float, key: str = "C major", sample_rate: int = TARGET_SAMPLE_RATE
) -> np.ndarray:
    """A stereo song [2, S] float32 in `key` at `bpm` (4/4), peaking at -3 dBFS; same arguments -> same array."""
    if duration_s <= 0 or bpm <= 0 or sample_rate <= 0:
        raise ValueError(f"duration_s, bpm and sample_rate must be positive, got {duration_s}, {bpm}, {sample_rate}")
    tonic, mode = _parse_key(key)
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    beat = 60.0 / bpm
    left = np.zeros(n)
    right = np.zeros(n)
    num_beats = int(np.ceil(duration_s / beat))
    root = tonic
    for index in range(num_beats):
        start = int(round(index * beat * sample_rate))
        position = index % _BEATS_PER_BAR
        if position == 0:
            offset, minor = _PROGRESSIONS[mode][(index // _BEATS_PER_BAR) % 4]
            root = tonic + offset
            chord = _chord(root, minor, _BEATS_PER_BAR * beat, sample_rate, rng)
            _add(left, chord, start, 0.6)
            _add(right, chord, start, 0.4)
        if position in (0, 2):
            bass = _tone(_midi_hz(36 + root % 12), 2 * beat * 0.9, sample_rate, decay_s=0.6, harmonics=2)
            bass *= 0.5 * rng.uniform(0.9, 1.0)
            _add(left, bass, start, 0.5)
            _add(right, bass, start, 0.5)
            kick = _kick(sample_rate) * rng.uniform(0.9, 1.0)
            _add(left, kick, start, 0.5)
            _add(right, kick, start, 0.5)
        else:
            snare = _snare(sample_rate, rng)
            _add(left, snare, start, 0.45)
            _add(right, snare, start, 0.55)
        for half in (0.0, 0.5):  # eighth-note hats
            hat = _hat(sample_rate, rng)
            _add(left, hat, int(round((index + half) * beat * sample_rate)), 0.35)
            _add(right, hat, int(round((index + half) * beat * sample_rate)), 0.65)
    song = np.stack([left, right])
    peak = float(np.max(np.abs(song)))
    if peak > 0:
        song *= 10.0 ** (_PEAK_DBFS / 20.0) / peak
    return song.astype(np.float32)


def _parse_key(key: str) -> tuple[int, str]:
    parts = key.split()
    if len(parts) != 2 or parts[0] not in _PITCH_CLASSES or parts[1] not in _PROGRESSIONS:
        raise ValueError(f"key must look like 'C major' or 'F# minor', got {key!r}")
    return _PITCH_CLASSES[parts[0]], parts[1]


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _tone(frequency_hz: float, duration_s: float, sample_rate: int, *, decay_s: float, harmonics: int) -> np.ndarray:
    """A note with a few decaying harmonics, a 10 ms attack and a 30 ms release (no clicks)."""
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    wave = sum(np.sin(2 * np.pi * frequency_hz * h * t) / h**1.5 for h in range(1, harmonics + 1))
    envelope = np.exp(-t / decay_s) * np.minimum(1.0, t / 0.01) * np.minimum(1.0, (duration_s - t) / 0.03)
    return wave * envelope


def _chord(root: int, minor: bool, duration_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A triad voiced around middle C, with the root doubled an octave up."""
    third = 3 if minor else 4
    notes = [60 + root % 12, 60 + root % 12 + third, 60 + root % 12 + 7, 72 + root % 12]
    voices = [_tone(_midi_hz(m), duration_s, sample_rate, decay_s=1.5, harmonics=3) for m in notes]
    return 0.18 * rng.uniform(0.85, 1.0) * np.sum(voices, axis=0)


def _kick(sample_rate: int) -> np.ndarray:
    """A sine sweeping 110 -> 45 Hz under a fast exponential decay."""
    t = np.arange(int(0.25 * sample_rate)) / sample_rate
    frequency = 45.0 + 65.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return 0.9 * np.sin(phase) * np.exp(-t / 0.08)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """High-passed noise (first difference) plus a short 190 Hz body."""
    t = np.arange(int(0.18 * sample_rate)) / sample_rate
    rattle = np.diff(rng.uniform(-1.0, 1.0, t.size + 1)) * np.exp(-t / 0.05)
    body = np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.03)
    return 0.3 * rattle + 0.3 * body


def _hat(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Noise differenced twice (a steep high-pass) with a 15 ms decay."""
    t = np.arange(int(0.06 * sample_rate)) / sample_rate
    return 0.06 * np.diff(rng.uniform(-1.0, 1.0, t.size + 2), n=2) * np.exp(-t / 0.015)


def _add(track: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    """Mix `sound` into `track` at `start`, cut at the track's end."""
    end = min(track.size, start + sound.size)
    if end > start:
        track[start:end] += gain * sound[: end - start]
