"""Turn a decoded waveform into what the VAE expects: 48 kHz stereo, start kept, optional loudness.

The order (decode, stereo, resample, truncate, normalize) and the channel rule follow the shared
training spec §1.2. Nothing here clamps to [-1, 1]: training preprocessing feeds the VAE unclamped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import soxr

from acetune.audio.decode import decode_audio
from acetune.audio.formats import TARGET_SAMPLE_RATE

Normalization = Literal["none", "peak", "lufs"]
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
# Below this peak a waveform counts as digital silence (spec model.md §6: the silence latent is used).
SILENCE_THRESHOLD = 1e-6
# BS.1770 integrates over 400 ms gating blocks; shorter audio has no loudness to measure.
_LOUDNESS_BLOCK_S = 0.4
# pyloudnorm's meter knows channel weights for at most five channels (L, R, C, Ls, Rs).
_LOUDNESS_MAX_CHANNELS = 5


@dataclass(frozen=True)
class NormalizeResult:
    waveform: np.ndarray  # [C, S] float32
    gain_db: float  # gain actually applied; 0.0 when left unchanged
    note: str | None  # why the result differs from what was asked, if it does


@dataclass(frozen=True)
class PreparedAudio:
    waveform: np.ndarray  # [2, S] float32 at sample_rate
    sample_rate: int
    source_duration_s: float  # whole file, before truncation
    truncated: bool
    note: str | None


def to_stereo(x: np.ndarray) -> np.ndarray:
    """Mono is duplicated; more than two channels keep the first two (not a downmix, as upstream does)."""
    _check_waveform(x)
    if x.shape[0] == 1:
        return np.concatenate([x, x], axis=0)
    return x[:2]


def resample(x: np.ndarray, from_rate: int, to_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Band-limited sample-rate conversion (soxr "HQ"); returns the input itself when the rates match."""
    _check_waveform(x)
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return x
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), dtype=np.float32)
    frames = np.ascontiguousarray(x.T, dtype=np.float32)  # soxr wants [S, C]
    out = soxr.resample(frames, from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def truncate(x: np.ndarray, sample_rate: int, max_duration_s: float | None) -> np.ndarray:
    """Keep the first `max_duration_s` seconds; None or 0 means no limit."""
    _check_waveform(x)
    if max_duration_s is None or max_duration_s == 0:
        return x
    if max_duration_s < 0:
        raise ValueError(f"max_duration_s must be >= 0 (0 = no limit), got {max_duration_s}")
    return x[:, : int(round(max_duration_s * sample_rate))]


def is_silent(x: np.ndarray, threshold: float = SILENCE_THRESHOLD) -> bool:
    """True when every |sample| is below `threshold`; such files get the silence latent, not a VAE encode."""
    return x.size == 0 or float(np.max(np.abs(x))) < threshold


def normalize(
    x: np.ndarray,
    sample_rate: int,
    mode: Normalization,
    *,
    peak_dbfs: float = -1.0,
    target_lufs: float = -14.0,
) -> NormalizeResult:
    """Loudness normalisation before VAE encoding; any deviation from the request is stated in `note`."""
    return _apply_normalization(x, sample_rate, mode, peak_dbfs, target_lufs)


def _apply_normalization(
    x: np.ndarray, sample_rate: int, mode: str, peak_dbfs: float, target_lufs: float
) -> NormalizeResult:
    # Separate from `normalize` because `load_audio`'s keyword argument of that name shadows it.
    _check_waveform(x)
    if mode == "none":
        return NormalizeResult(x, 0.0, None)
    if mode == "peak":
        return _normalize_peak(x, peak_dbfs)
    if mode == "lufs":
        return _normalize_lufs(x, sample_rate, target_lufs, peak_dbfs)
    raise ValueError(f"unknown normalization {mode!r}; choose one of {', '.join(NORMALIZATIONS)}")


def load_audio(
    path: Path | str,
    *,
    sample_rate: int = TARGET_SAMPLE_RATE,
    max_duration_s: float | None = 240.0,
    normalize: Normalization = "none",
) -> PreparedAudio:
    """decode -> stereo -> resample -> truncate (start kept) -> normalize; raises AudioError for bad files."""
    if normalize not in NORMALIZATIONS:  # fail before the (slow) decode
        raise ValueError(f"unknown normalization {normalize!r}; choose one of {', '.join(NORMALIZATIONS)}")
    decoded, native_rate = decode_audio(path)
    source_duration_s = decoded.shape[1] / native_rate
    stereo = resample(to_stereo(decoded), native_rate, sample_rate)
    kept = truncate(stereo, sample_rate, max_duration_s)
    result = _apply_normalization(kept, sample_rate, normalize, peak_dbfs=-1.0, target_lufs=-14.0)
    return PreparedAudio(
        waveform=np.ascontiguousarray(result.waveform, dtype=np.float32),
        sample_rate=sample_rate,
        source_duration_s=source_duration_s,
        truncated=kept.shape[1] < stereo.shape[1],
        note=result.note,
    )


def _normalize_peak(x: np.ndarray, peak_dbfs: float) -> NormalizeResult:
    peak = _peak(x)
    if peak < SILENCE_THRESHOLD:
        return NormalizeResult(x, 0.0, f"peak normalisation skipped: audio is silent (peak {peak:.1e} < 1e-6)")
    gain = 10.0 ** (peak_dbfs / 20.0) / peak
    return NormalizeResult((x * gain).astype(np.float32), 20.0 * math.log10(gain), None)


def _normalize_lufs(x: np.ndarray, sample_rate: int, target_lufs: float, peak_dbfs: float) -> NormalizeResult:
    if x.shape[0] > _LOUDNESS_MAX_CHANNELS:
        raise ValueError(f"LUFS normalisation handles at most 5 channels, got {x.shape[0]}; call to_stereo first")
    if x.shape[1] <= _LOUDNESS_BLOCK_S * sample_rate:
        duration_s = x.shape[1] / sample_rate
        return NormalizeResult(
            x, 0.0, f"LUFS normalisation skipped: {duration_s:.2f} s is too short to measure (needs > 0.4 s)"
        )
    import pyloudnorm  # scipy.signal underneath: a second of import time, only when loudness is measured

    meter = pyloudnorm.Meter(sample_rate)
    loudness = float(meter.integrated_loudness(np.ascontiguousarray(x.T, dtype=np.float64)))
    if not math.isfinite(loudness):
        return NormalizeResult(x, 0.0, "LUFS normalisation skipped: audio is silent (loudness is -inf LUFS)")
    gain_db = target_lufs - loudness
    y = x * 10.0 ** (gain_db / 20.0)
    peak = _peak(y)
    if peak <= 1.0:
        return NormalizeResult(y.astype(np.float32), gain_db, None)
    limit_db = peak_dbfs - 20.0 * math.log10(peak)
    note = (
        f"LUFS normalisation to {target_lufs:g} LUFS would clip (peak {20.0 * math.log10(peak):+.1f} dBFS); "
        f"scaled down to a {peak_dbfs:g} dBFS peak, so loudness is {target_lufs + limit_db:.1f} LUFS"
    )
    y = y * 10.0 ** (limit_db / 20.0)
    return NormalizeResult(y.astype(np.float32), gain_db + limit_db, note)


def _peak(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def _check_waveform(x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[0] == 0:
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"expected a waveform shaped [channels, samples], got {shape}")
