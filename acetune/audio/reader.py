"""Stream an audio file as float32 blocks [channels, n] at its own rate, so memory never grows with its length.

libsndfile (through soundfile) is tried first because it is fast and exact for wav/flac/ogg/mp3;
FFmpeg (through PyAV) covers what libsndfile cannot read (m4a/aac, some opus). A decoder that
fails, at the start or midway, hands over to the next one, which starts again from the beginning.

Neither decoder may guess: libsndfile only reads files whose header it recognises, and FFmpeg's
answer is accepted only when it names one of the containers acetune reads. Left to guess, FFmpeg
probes a WAV whose header was zeroed as Nintendo "adp" ADPCM and "decodes" 4 s of music into 14 s of
full-scale noise.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import av
import av.error
import numpy as np
import soundfile as sf

from acetune.errors import AudioError

logger = logging.getLogger(__name__)

T = TypeVar("T")
Blocks = Iterator[np.ndarray]  # each [C, n] float32, n > 0

BLOCK_FRAMES = 1 << 16  # ~1.4 s at 48 kHz: large enough for fast numpy/soxr calls, small next to a song
REENCODE_FIX = "re-export the file as .wav or .flac (e.g. `ffmpeg -i IN OUT.flac`) or remove it"
# soundfile raises LibsndfileError (a RuntimeError) for unreadable data; older releases raise RuntimeError.
SOUNDFILE_ERRORS: tuple[type[Exception], ...] = (sf.SoundFileError, RuntimeError)
# Every PyAV decode/demux failure (InvalidDataError, EOFError, ...) derives from FFmpegError.
_PYAV_ERRORS: tuple[type[Exception], ...] = (av.error.FFmpegError,)
# FFmpeg's demuxers for the containers of AUDIO_EXTENSIONS (.opus is Ogg, sometimes WebM; .m4a is MP4). A file
# named with the wrong one of these (an .m4a saved as .mp3) still decodes correctly.
TRUSTED_DEMUXERS = frozenset({"wav", "flac", "mp3", "ogg", "aac", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# libsndfile's RIFF/WAVE formats: it counts frames from the file size, so the header's count is read apart.
_RIFF_FORMATS = frozenset({"WAV", "WAVEX"})
# bytes per sample of libsndfile's PCM/float subtypes (compressed WAV subtypes have no fixed block size)
_SUBTYPE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
# Integer sample formats PyAV may hand back, and the divisor that maps them to [-1, 1).
_PCM_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int64): 2.0**63}


@dataclass(frozen=True)
class StreamInfo:
    """What is known about a file before its blocks are read."""

    sample_rate: int
    channels: int
    header_frames: int | None  # the length the header states, if it states one (an estimate for lossy files)
    exact: bool  # header_frames is exact (WAV data size, FLAC STREAMINFO): fewer decoded means truncated


class DecoderFailed(Exception):
    """One decoder could not read the file; the next one is tried. Never leaves this module's callers."""


def stream_audio(path: Path, consume: Callable[[StreamInfo, Blocks], T], *, first_block_s: float | None = None) -> T:
    """`consume(info, blocks)` with the first decoder that reads the whole of what `consume` asks for.

    `consume` may stop early (the unread rest is never decoded). If a decoder fails midway, `consume`
    is called again with the next decoder from the start. Non-finite samples raise AudioError.
    libsndfile reads the first `first_block_s` seconds (None: the whole file) in one call: its MP3
    decoder returns samples that differ by one 16-bit step depending on where reads split the stream
    (measured with libsndfile 1.2 / mpg123), so a caller that reads what it keeps in one call gets
    exactly what a whole-file read gives. Later blocks are BLOCK_FRAMES long.
    """
    failures: list[str] = []
    for name, opener in (("soundfile", partial(_soundfile_stream, first_block_s=first_block_s)),
                         ("PyAV", _pyav_stream)):
        try:
            with opener(path) as (info, blocks):
                return consume(info, _finite(blocks, path))
        except DecoderFailed as failed:
            logger.debug("%s cannot read %s (%s)", name, path, failed)
            failures.append(f"{name}: {failed}")
    raise AudioError(f"cannot decode audio; the file is corrupt or not audio ({'; '.join(failures)})", path=path,
                     fix=REENCODE_FIX)


def open_pyav(path: Path) -> av.container.InputContainer:
    """FFmpeg's reader for `path`, refused (DecoderFailed) unless FFmpeg recognised a trusted container."""
    try:
        container = av.open(str(path))
    except _PYAV_ERRORS as err:
        raise DecoderFailed(str(err)) from err
    name = container.format.name
    if name not in TRUSTED_DEMUXERS:
        container.close()
        raise DecoderFailed(f"no known audio container; FFmpeg could only guess {name!r} from the bytes")
    return container


def audio_stream(container: av.container.InputContainer, path: Path) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise AudioError("file has no audio stream", path=path, fix=REENCODE_FIX)
    return container.streams.audio[0]


def _finite(blocks: Blocks, path: Path) -> Blocks:
    for block in blocks:
        if not np.isfinite(block).all():
            raise AudioError("audio contains NaN or Inf samples", path=path, fix=REENCODE_FIX)
        yield block


@contextmanager
def _soundfile_stream(path: Path, *, first_block_s: float | None) -> Iterator[tuple[StreamInfo, Blocks]]:
    try:
        handle = sf.SoundFile(str(path))
    except SOUNDFILE_ERRORS as err:
        raise DecoderFailed(str(err)) from err
    with handle:
        frames = handle.frames if handle.frames > 0 else None
        exact = frames is not None and handle.format == "FLAC"
        if handle.format in _RIFF_FORMATS:  # libsndfile counts what the file holds; the header may promise more
            frames, exact = wav_declared_frames(path, _block_align(handle)) or frames, True
        info = StreamInfo(int(handle.samplerate), int(handle.channels), frames, exact)
        first = -1 if first_block_s is None else max(1, math.ceil(first_block_s * info.sample_rate))
        yield info, _soundfile_blocks(handle, first)


def _block_align(handle: sf.SoundFile) -> int:
    return _SUBTYPE_BYTES.get(handle.subtype, 0) * int(handle.channels)


def _soundfile_blocks(handle: sf.SoundFile, first: int) -> Blocks:
    """Blocks of BLOCK_FRAMES after a first one of `first` frames (-1: the whole file)."""
    done = 0
    while True:
        try:
            data = handle.read(first if done == 0 else BLOCK_FRAMES, dtype="float32", always_2d=True)  # [n, C]
        except SOUNDFILE_ERRORS as err:
            raise DecoderFailed(f"{err} (after {done} samples)") from err
        if data.shape[0] == 0:
            return
        done += data.shape[0]
        yield data.T  # a view [C, n]; consumers copy what they keep


def wav_declared_frames(path: Path, block_align: int) -> int | None:
    """Frames the `data` chunk of a RIFF/WAVE file declares, or None (no such chunk, or a size left open).

    libsndfile and FFmpeg both report what the file holds, not what its header promised, so the one
    fact that shows a cut-short WAV is read here. RIFF layout (Microsoft/IBM RIFF spec, 1991): "RIFF",
    size, "WAVE", then chunks of a 4-byte id, a little-endian uint32 size and the data, padded to even.
    """
    with open(path, "rb") as handle:
        if handle.read(12)[8:12] != b"WAVE":
            return None
        while len(header := handle.read(8)) == 8:
            chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"data":
                return None if size in (0, 0xFFFFFFFF) or block_align <= 0 else size // block_align
            handle.seek(size + (size & 1), os.SEEK_CUR)
    return None


@contextmanager
def _pyav_stream(path: Path) -> Iterator[tuple[StreamInfo, Blocks]]:
    with open_pyav(path) as container:
        stream = audio_stream(container, path)
        frames = iter(container.decode(stream))
        try:  # the first frame's rate, not the header's: HE-AAC headers state half the decoded rate
            first = next(frames, None)
        except _PYAV_ERRORS as err:
            raise DecoderFailed(str(err)) from err
        rate = int(first.sample_rate) if first is not None else int(stream.codec_context.sample_rate)
        channels = len(first.layout.channels) if first is not None else int(stream.codec_context.channels) or 1
        header, exact = pyav_header_frames(container, stream, rate)
        info = StreamInfo(rate, channels, header, exact)
        chain = itertools.chain([first], frames) if first is not None else iter(())
        yield info, _pyav_blocks(chain, rate, channels, path)


def pyav_header_frames(container, stream, rate: int) -> tuple[int | None, bool]:
    """(frames the header states or None, whether that count is exact) for FFmpeg's first audio stream."""
    if stream.duration is None or stream.time_base is None or container.format.name == "aac":
        return None, False  # raw ADTS has no length field: FFmpeg's "duration" is a bit-rate guess
    frames = int(round(float(stream.duration * stream.time_base) * rate))
    codec = stream.codec_context.name
    return frames, codec == "flac" or codec.startswith("pcm_")  # lossless: the header's count is exact


def _pyav_blocks(frames: Iterator[av.AudioFrame], rate: int, channels: int, path: Path) -> Blocks:
    """Decoded frames gathered into blocks of about BLOCK_FRAMES samples."""
    pending: list[np.ndarray] = []
    count = 0
    while True:
        try:
            frame = next(frames, None)
        except _PYAV_ERRORS as err:
            raise DecoderFailed(f"{err} (after {count} samples of this block)") from err
        if frame is not None:
            if int(frame.sample_rate) != rate or len(frame.layout.channels) != channels:
                raise AudioError("the sample rate or channel count changes inside the file", path=path,
                                 fix=REENCODE_FIX)
            pending.append(frame_to_array(frame))
            count += pending[-1].shape[1]
        if pending and (frame is None or count >= BLOCK_FRAMES):
            yield pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)
            pending, count = [], 0
        if frame is None:
            return


def frame_to_array(frame: av.AudioFrame) -> np.ndarray:
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


def read_all(info: StreamInfo, blocks: Blocks) -> np.ndarray:
    """A `consume` that keeps every block: the whole file [C, S] at its own rate."""
    pieces = list(blocks)
    if not pieces:
        return np.zeros((info.channels, 0), dtype=np.float32)
    return np.ascontiguousarray(pieces[0]) if len(pieces) == 1 else np.concatenate(pieces, axis=1)


__all__ = ["BLOCK_FRAMES", "REENCODE_FIX", "SOUNDFILE_ERRORS", "TRUSTED_DEMUXERS", "DecoderFailed", "StreamInfo",
           "audio_stream", "frame_to_array", "open_pyav", "pyav_header_frames", "read_all", "stream_audio",
           "wav_declared_frames"]
