"""Read audio files into float32 arrays shaped [channels, samples] at the file's own rate.

libsndfile (through soundfile) is tried first because it is fast and exact for wav/flac/ogg/mp3;
FFmpeg (through PyAV) covers what libsndfile cannot read (m4a/aac, some opus). Every way a file can
be unusable becomes an `AudioError` that names the file, so a batch job can skip it with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
import soundfile as sf

from acetune.audio.formats import AUDIO_EXTENSIONS
from acetune.errors import AudioError

logger = logging.getLogger(__name__)

# soundfile raises LibsndfileError (a RuntimeError) for unreadable data; older releases raise RuntimeError.
_SOUNDFILE_ERRORS: tuple[type[Exception], ...] = (sf.SoundFileError, RuntimeError)
# Every PyAV decode/demux failure (InvalidDataError, EOFError, ...) derives from FFmpegError.
_PYAV_ERRORS: tuple[type[Exception], ...] = (av.error.FFmpegError,)
# Integer sample formats PyAV may hand back, and the divisor that maps them to [-1, 1).
_PCM_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int64): 2.0**63}
# FFmpeg demuxers whose "duration" is only a bit-rate guess (raw ADTS has no length field): count by decoding.
_GUESSED_DURATION_DEMUXERS = frozenset({"aac"})
_REENCODE_FIX = "re-export the file as .wav or .flac (e.g. `ffmpeg -i IN OUT.flac`) or remove it"


@dataclass(frozen=True)
class AudioInfo:
    """What a file's headers say, read without decoding the audio where the format allows it."""

    path: Path
    sample_rate: int
    channels: int
    frames: int  # samples per channel

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def probe_audio(path: Path | str) -> AudioInfo:
    """Rate, channels and length of a file; cheap enough to run over a whole dataset folder.

    The frame count is the header's (exact for wav/flac, an estimate for some mp3/aac files).
    Files whose headers carry no reliable duration (e.g. raw ADTS .aac) are measured by decoding.
    """
    path = _checked_path(path)
    try:
        header = sf.info(str(path))
    except _SOUNDFILE_ERRORS as sf_error:
        try:
            probed = _probe_pyav(path)
        except _PYAV_ERRORS as av_error:
            raise _unreadable(path, sf_error, av_error) from av_error
        if probed is None:  # no duration in the headers: count by decoding
            waveform, rate = decode_audio(path)
            return AudioInfo(path, rate, waveform.shape[0], waveform.shape[1])
        return _valid_info(probed)
    return _valid_info(AudioInfo(path, int(header.samplerate), int(header.channels), int(header.frames)))


def decode_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Decode a whole file: (waveform [C, S] float32, native sample rate). Nothing is resampled or clipped."""
    path = _checked_path(path)
    try:
        waveform, rate, header_frames = _read_soundfile(path)
    except _SOUNDFILE_ERRORS as sf_error:
        logger.debug("soundfile cannot read %s (%s); trying PyAV", path, sf_error)
        try:
            waveform, rate, header_frames = _read_pyav(path)
        except _PYAV_ERRORS as av_error:
            raise _unreadable(path, sf_error, av_error) from av_error
    _check_decoded(path, waveform, header_frames)
    return waveform, rate


def _checked_path(path: Path | str) -> Path:
    """File-level checks that need no decoder, so their messages can be precise."""
    path = Path(path)
    if not path.exists():
        raise AudioError("audio file not found", path=path, fix="check the path and the file name")
    if not path.is_file():
        raise AudioError("not a regular file", path=path, fix="pass an audio file, not a folder")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise AudioError(
            f"unsupported audio file type {path.suffix or '(no suffix)'!r}",
            path=path,
            fix=f"convert it to one of {', '.join(AUDIO_EXTENSIONS)}",
        )
    if path.stat().st_size == 0:
        raise AudioError("file is empty (0 bytes)", path=path, fix="re-export or re-download the file")
    return path


def _read_soundfile(path: Path) -> tuple[np.ndarray, int, int | None]:
    """libsndfile decode; returns the header frame count only where it is exact (FLAC STREAMINFO)."""
    with sf.SoundFile(str(path)) as handle:
        rate = int(handle.samplerate)
        exact = handle.frames if handle.format == "FLAC" and handle.frames > 0 else None
        data = handle.read(dtype="float32", always_2d=True)  # [S, C]
    return np.ascontiguousarray(data.T), rate, exact


def _probe_pyav(path: Path) -> AudioInfo | None:
    """Header facts from FFmpeg; None when the stream carries no duration to count frames from."""
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        rate = int(stream.codec_context.sample_rate)
        channels = int(stream.codec_context.channels)
        if stream.duration is None or stream.time_base is None or container.format.name in _GUESSED_DURATION_DEMUXERS:
            return None
        frames = int(round(float(stream.duration * stream.time_base) * rate))
    return AudioInfo(path, rate, channels, frames)


def _read_pyav(path: Path) -> tuple[np.ndarray, int, int | None]:
    """FFmpeg decode of the first audio stream, converted frame by frame to float32 [C, S]."""
    chunks: list[np.ndarray] = []
    rate = 0
    exact: int | None = None
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        rate = int(stream.codec_context.sample_rate)
        if stream.codec_context.name == "flac" and stream.duration and stream.time_base is not None:
            exact = int(round(float(stream.duration * stream.time_base) * rate))
        for frame in container.decode(stream):
            chunks.append(_frame_to_array(frame))
            rate = int(frame.sample_rate)
    if not chunks:
        channels = int(stream.codec_context.channels) or 1
        return np.zeros((channels, 0), dtype=np.float32), rate, exact
    return np.concatenate(chunks, axis=1), rate, exact


def _audio_stream(container: av.container.InputContainer, path: Path) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise AudioError("file has no audio stream", path=path, fix=_REENCODE_FIX)
    return container.streams.audio[0]


def _frame_to_array(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 [C, n], whatever sample format the decoder produced."""
    channels = len(frame.layout.channels)
    raw = frame.to_ndarray()
    if not frame.format.is_planar:  # packed samples arrive as [1, n * C], interleaved
        raw = raw.reshape(-1, channels).T
    if raw.dtype == np.uint8:
        return ((raw.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if raw.dtype in _PCM_SCALE:
        return (raw.astype(np.float64) / _PCM_SCALE[raw.dtype]).astype(np.float32)
    return raw.astype(np.float32, copy=False)


def _check_decoded(path: Path, waveform: np.ndarray, header_frames: int | None) -> None:
    """Reject audio that decoded but cannot be trained on: empty, cut short, or non-finite."""
    if waveform.shape[1] == 0:
        raise AudioError("file contains no audio samples (zero length)", path=path, fix=_REENCODE_FIX)
    if header_frames is not None and waveform.shape[1] < header_frames:
        raise AudioError(
            f"file is truncated: header says {header_frames} samples, only {waveform.shape[1]} decode",
            path=path,
            fix=_REENCODE_FIX,
        )
    if not np.isfinite(waveform).all():
        raise AudioError("audio contains NaN or Inf samples", path=path, fix=_REENCODE_FIX)


def _valid_info(info: AudioInfo) -> AudioInfo:
    if info.frames <= 0 and info.sample_rate > 0:
        raise AudioError("file contains no audio samples (zero length)", path=info.path, fix=_REENCODE_FIX)
    if info.sample_rate <= 0 or info.channels <= 0:
        raise AudioError("header has no valid sample rate or channel count", path=info.path, fix=_REENCODE_FIX)
    return info


def _unreadable(path: Path, sf_error: Exception, av_error: Exception) -> AudioError:
    return AudioError(
        f"cannot decode audio; the file is corrupt or not audio (soundfile: {sf_error}; PyAV: {av_error})",
        path=path,
        fix=_REENCODE_FIX,
    )
