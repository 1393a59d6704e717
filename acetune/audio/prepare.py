"""Turn a decoded waveform into what the VAE expects: 48 kHz stereo, start kept, optional loudness.

The order (decode, stereo, resample, truncate, normalize) and the channel rule follow the shared
training spec §1.2. Nothing here clamps to [-1, 1]: training preprocessing feeds the VAE unclamped.
`load_audio` streams: it decodes and resamples block by block and stops once `max_duration_s` is
kept, so a one-hour file costs no more memory than a four-minute one. soxr's streaming resampler
gives the same samples as its one-shot `resample` (checked in tests/audio/test_audio_stream.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soxr

from acetune.audio.decode import checked_path, no_samples, truncation_note
from acetune.audio.formats import TARGET_SAMPLE_RATE
from acetune.audio.reader import BLOCK_FRAMES, Blocks, StreamInfo, stream_audio
from acetune.config.schema import Normalization  # the choices are declared once, in the config schema

NORMALIZATIONS: tuple[str, ...] = tuple(mode.value for mode in Normalization)
# Below this peak a waveform counts as digital silence (spec model.md §6: the silence latent is used).
SILENCE_THRESHOLD = 1e-6
# BS.1770 integrates over 400 ms gating blocks; shorter audio has no loudness to measure.
_LOUDNESS_BLOCK_S = 0.4
# Read past the kept part in the first block, so the resampler's look-ahead (a few ms for soxr HQ) is there too.
_LOOKAHEAD_S = 1.0
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
    source_duration_s: float  # whole file, before truncation (the header's length when not read to the end)
    truncated: bool  # the file holds more than max_duration_s
    notes: tuple[str, ...] = ()  # what the user should hear about: a cut-short file, a skipped normalisation


@dataclass(frozen=True)
class _Kept:
    waveform: np.ndarray  # [2, S] float32 at the target rate
    source_frames: int  # at the file's own rate
    source_rate: int
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
    limit = max_samples(sample_rate, max_duration_s)
    return x if limit is None else x[:, :limit]


def max_samples(sample_rate: int, max_duration_s: float | None) -> int | None:
    """How many samples `max_duration_s` keeps at `sample_rate`; None (no limit) for None or 0."""
    if max_duration_s is None or max_duration_s == 0:
        return None
    if max_duration_s < 0:
        raise ValueError(f"max_duration_s must be >= 0 (0 = no limit), got {max_duration_s}")
    return int(round(max_duration_s * sample_rate))


def is_silent(x: np.ndarray, threshold: float = SILENCE_THRESHOLD) -> bool:
    """True when every |sample| is below `threshold`; such files get the silence latent, not a VAE encode."""
    return x.size == 0 or float(np.max(np.abs(x))) < threshold


def normalize(
    x: np.ndarray,
    sample_rate: int,
    mode: Normalization | str,
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
    normalize: Normalization | str = Normalization.NONE,
) -> PreparedAudio:
    """decode -> stereo -> resample -> truncate (start kept) -> normalize; raises AudioError for bad files.

    Streamed: only the kept start of the file is decoded and resampled (see the module docstring).
    """
    if normalize not in NORMALIZATIONS:  # fail before the (slow) decode
        raise ValueError(f"unknown normalization {normalize!r}; choose one of {', '.join(NORMALIZATIONS)}")
    path = checked_path(path)
    limit = max_samples(sample_rate, max_duration_s)
    kept = stream_audio(path, partial(_keep_start, path=path, sample_rate=sample_rate, limit=limit),
                        first_block_s=None if limit is None else limit / sample_rate + _LOOKAHEAD_S)
    result = _apply_normalization(kept.waveform, sample_rate, normalize, peak_dbfs=-1.0, target_lufs=-14.0)
    return PreparedAudio(
        waveform=np.ascontiguousarray(result.waveform, dtype=np.float32),
        sample_rate=sample_rate,
        source_duration_s=kept.source_frames / kept.source_rate,
        truncated=kept.truncated,
        notes=tuple(note for note in (kept.note, result.note) if note),
    )


def _keep_start(info: StreamInfo, blocks: Blocks, *, path: Path, sample_rate: int, limit: int | None) -> _Kept:
    """Blocks -> stereo -> resampled, until `limit` samples are kept or the file ends."""
    stream = None if info.sample_rate == sample_rate else soxr.ResampleStream(
        info.sample_rate, sample_rate, 2, dtype="float32", quality="HQ")
    out = _Output(limit)
    blocks = _sliced(blocks)
    read = 0
    for block in blocks:
        read += block.shape[1]
        out.add(_resample_chunk(stream, to_stereo(block), last=False))
        if out.full:
            break
    rest = next(blocks, None) if out.full else None
    if rest is not None:  # stopped early: the length comes from the header, else from decoding the rest
        source_frames = info.header_frames or read + rest.shape[1] + sum(b.shape[1] for b in blocks)
    else:  # read to the end: what is still inside the resampler is flushed, as a one-shot call does
        source_frames = read
        if stream is not None:
            out.add(_resample_chunk(stream, np.zeros((2, 0), dtype=np.float32), last=True))
    if read == 0:
        raise no_samples(path)
    note = truncation_note(info, read) if rest is None else None
    waveform = out.waveform()
    return _Kept(waveform, source_frames, info.sample_rate, rest is not None or waveform.shape[1] < out.seen, note)


def _sliced(blocks: Blocks) -> Blocks:
    """Decoder blocks cut into views of at most BLOCK_FRAMES, so each resampler call stays small."""
    for block in blocks:
        for start in range(0, block.shape[1], BLOCK_FRAMES):
            yield block[:, start:start + BLOCK_FRAMES]


def _resample_chunk(stream: soxr.ResampleStream | None, x: np.ndarray, *, last: bool) -> np.ndarray:
    if stream is None:
        return x
    out = stream.resample_chunk(np.ascontiguousarray(x.T, dtype=np.float32), last=last)  # soxr wants [S, C]
    return out.T


class _Output:
    """Resampled pieces, up to `limit` samples, gathered into one array (preallocated when the limit is known)."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.seen = 0  # samples offered, including any past the limit
        self._array = None if limit is None else np.empty((2, limit), dtype=np.float32)  # pages commit on write
        self._pieces: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.limit is not None and self.seen >= self.limit

    def add(self, piece: np.ndarray) -> None:
        if self._array is None:
            self._pieces.append(piece)
        else:
            start = min(self.seen, self._array.shape[1])
            take = min(piece.shape[1], self._array.shape[1] - start)
            self._array[:, start:start + take] = piece[:, :take]
        self.seen += piece.shape[1]

    def waveform(self) -> np.ndarray:
        if self._array is not None:
            return np.ascontiguousarray(self._array[:, :min(self.seen, self._array.shape[1])])
        return np.concatenate(self._pieces, axis=1) if self._pieces else np.zeros((2, 0), dtype=np.float32)


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
