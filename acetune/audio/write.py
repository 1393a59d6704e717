"""Write a waveform [C, S] to an audio file chosen by suffix, atomically and never over an existing file by accident.

libsndfile writes wav/flac/ogg/mp3; FFmpeg (through PyAV) writes AAC (.m4a/.aac) and Opus. The file
appears under its final name only once it is complete (`acetune.atomic.atomic_path`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import av.error
import numpy as np
import soundfile as sf

from acetune.atomic import atomic_path
from acetune.audio.prepare import resample
from acetune.errors import AudioError

logger = logging.getLogger(__name__)

# suffix -> (libsndfile format, subtype). WAV keeps float32 so nothing is clipped or quantised.
_SOUNDFILE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_24"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}
# suffix -> (FFmpeg muxer, encoder, sample format the encoder takes, bit rate)
_PYAV_FORMATS: dict[str, tuple[str, str, str, int]] = {
    ".m4a": ("ipod", "aac", "fltp", 192_000),
    ".aac": ("adts", "aac", "fltp", 192_000),
    ".opus": ("ogg", "libopus", "flt", 160_000),
}
_PYAV_LAYOUTS = {1: "mono", 2: "stereo"}
_OPUS_RATE = 48_000  # Opus codes at 48 kHz (the only rate we write)
_WRITE_ERRORS: tuple[type[Exception], ...] = (sf.SoundFileError, RuntimeError, av.error.FFmpegError)
_FRAME_CHUNK = 4096  # samples per PyAV frame handed to the encoder


def write_audio(path: Path | str, waveform: np.ndarray, sample_rate: int, *, overwrite: bool = False) -> Path:
    """Encode `waveform` [C, S] into `path` by its suffix; returns the path written.

    Formats other than .wav cannot hold samples beyond [-1, 1]; those are clipped, with a logged warning.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SOUNDFILE_FORMATS and suffix not in _PYAV_FORMATS:
        supported = ", ".join([*_SOUNDFILE_FORMATS, *_PYAV_FORMATS])
        raise AudioError(f"cannot write audio type {suffix or '(no suffix)'!r}", path=path, fix=f"use one of {supported}")
    if path.exists() and not overwrite:
        raise AudioError("file already exists", path=path, fix="choose another path, or pass --overwrite")
    x = _checked_waveform(waveform, sample_rate, path)
    if suffix != ".wav":
        x = _clip(x, path)
    try:
        with atomic_path(path) as tmp:
            if suffix in _SOUNDFILE_FORMATS:
                _write_soundfile(tmp, x, sample_rate, *_SOUNDFILE_FORMATS[suffix])
            else:
                _write_pyav(tmp, x, sample_rate, suffix, path)
    except _WRITE_ERRORS as error:
        raise AudioError(f"cannot encode {suffix} audio: {error}", path=path, fix="try .wav or .flac") from error
    return path


def _write_soundfile(tmp: Path, x: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> None:
    with sf.SoundFile(str(tmp), mode="w", samplerate=sample_rate, channels=x.shape[0], format=fmt, subtype=subtype) as f:
        frames = np.ascontiguousarray(x.T)  # [S, C]
        # libsndfile's Vorbis/MP3 encoders are happier with moderate blocks than one huge write.
        for start in range(0, frames.shape[0], 65536):
            f.write(frames[start : start + 65536])


def _write_pyav(tmp: Path, x: np.ndarray, sample_rate: int, suffix: str, path: Path) -> None:
    muxer, codec, sample_format, bit_rate = _PYAV_FORMATS[suffix]
    if x.shape[0] not in _PYAV_LAYOUTS:
        raise AudioError(
            f"{suffix} is written with 1 or 2 channels, got {x.shape[0]}",
            path=path,
            fix="call to_stereo first, or write .wav/.flac",
        )
    if codec == "libopus" and sample_rate != _OPUS_RATE:
        x, sample_rate = resample(x, sample_rate, _OPUS_RATE), _OPUS_RATE
    layout = _PYAV_LAYOUTS[x.shape[0]]
    with av.open(str(tmp), mode="w", format=muxer) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        stream.bit_rate = bit_rate
        for start in range(0, x.shape[1], _FRAME_CHUNK):
            chunk = x[:, start : start + _FRAME_CHUNK]
            # planar formats take [C, n]; packed ("flt") takes interleaved samples as [1, n * C]
            data = chunk if sample_format.endswith("p") else chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=sample_format, layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _checked_waveform(waveform: np.ndarray, sample_rate: int, path: Path) -> np.ndarray:
    if not isinstance(waveform, np.ndarray) or waveform.ndim != 2 or waveform.shape[0] == 0:
        shape = getattr(waveform, "shape", type(waveform).__name__)
        raise ValueError(f"expected a waveform shaped [channels, samples], got {shape} for {path}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate} for {path}")
    if not np.isfinite(waveform).all():
        raise ValueError(f"waveform for {path} contains NaN or Inf")
    return waveform.astype(np.float32, copy=False)


def _clip(x: np.ndarray, path: Path) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 1.0:
        return x
    logger.warning("%s: peak %.3f exceeds 1.0; clipping to [-1, 1] (only .wav stores it unclipped)", path, peak)
    return np.clip(x, -1.0, 1.0)
