"""Read audio files into float32 arrays shaped [channels, samples] at the file's own rate.

The decoding itself (soundfile first, then PyAV; streamed, never guessing a format) lives in
`reader.py`. Every way a file can be unusable becomes an `AudioError` that names the file, so a
batch job can skip it with a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from acetune.audio.files import file_problem
from acetune.audio.formats import AUDIO_EXTENSIONS
from acetune.audio.reader import (REENCODE_FIX, SOUNDFILE_ERRORS, DecoderFailed, StreamInfo, audio_stream, open_pyav,
                                  pyav_header_frames, read_all, stream_audio)
from acetune.errors import AudioError

logger = logging.getLogger(__name__)


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
    path = checked_path(path)
    try:
        header = sf.info(str(path))
    except SOUNDFILE_ERRORS as sf_error:
        try:
            probed = _probe_pyav(path)
        except DecoderFailed as av_error:
            raise AudioError(f"cannot decode audio; the file is corrupt or not audio (soundfile: {sf_error}; "
                             f"PyAV: {av_error})", path=path, fix=REENCODE_FIX) from av_error
        if probed is None:  # no duration in the headers: count by decoding (streamed, nothing kept)
            return stream_audio(path, lambda info, blocks: _counted(path, info, blocks))
        return _valid_info(probed)
    return _valid_info(AudioInfo(path, int(header.samplerate), int(header.channels), int(header.frames)))


def decode_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Decode a whole file: (waveform [C, S] float32, native sample rate). Nothing is resampled or clipped.

    A file cut short (fewer samples than its header states) decodes to what it holds, with a logged
    warning; `load_audio` reports the same as a note for the user.
    """
    path = checked_path(path)
    waveform, info = stream_audio(path, lambda info, blocks: (read_all(info, blocks), info))
    if waveform.shape[1] == 0:
        raise no_samples(path)
    note = truncation_note(info, waveform.shape[1])
    if note:
        logger.warning("%s: %s", path, note)
    return waveform, info.sample_rate


def checked_path(path: Path | str) -> Path:
    """File-level checks that need no decoder (and open nothing), so their messages can be precise."""
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise AudioError(problem, path=path, fix="check the path: pass a regular audio file, or mend the link")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise AudioError(
            f"unsupported audio file type {path.suffix or '(no suffix)'!r}",
            path=path,
            fix=f"convert it to one of {', '.join(AUDIO_EXTENSIONS)}",
        )
    if path.stat().st_size == 0:
        raise AudioError("file is empty (0 bytes)", path=path, fix="re-export or re-download the file")
    return path


def truncation_note(info: StreamInfo, decoded_frames: int) -> str | None:
    """The warning for a file that ends before its header says it does (a cut download or copy)."""
    if not info.exact or info.header_frames is None or decoded_frames >= info.header_frames:
        return None
    rate = info.sample_rate
    return (f"the file is truncated: its header promises {info.header_frames / rate:.2f} s but only "
            f"{decoded_frames / rate:.2f} s ({decoded_frames} of {info.header_frames} samples) could be read; "
            "the readable part is used")


def no_samples(path: Path) -> AudioError:
    return AudioError("file contains no audio samples (zero length)", path=path, fix=REENCODE_FIX)


def _probe_pyav(path: Path) -> AudioInfo | None:
    """Header facts from FFmpeg; None when the stream carries no duration to count frames from."""
    with open_pyav(path) as container:
        stream = audio_stream(container, path)
        rate = int(stream.codec_context.sample_rate)
        frames, _ = pyav_header_frames(container, stream, rate)
        channels = int(stream.codec_context.channels)
    return None if frames is None else AudioInfo(path, rate, channels, frames)


def _counted(path: Path, info: StreamInfo, blocks) -> AudioInfo:
    frames = sum(block.shape[1] for block in blocks)
    return _valid_info(AudioInfo(path, info.sample_rate, info.channels, frames))


def _valid_info(info: AudioInfo) -> AudioInfo:
    if info.frames <= 0 and info.sample_rate > 0:
        raise no_samples(info.path)
    if info.sample_rate <= 0 or info.channels <= 0:
        raise AudioError("header has no valid sample rate or channel count", path=info.path, fix=REENCODE_FIX)
    return info
