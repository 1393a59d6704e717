"""Streamed loading: only the kept start of a file is decoded, and what is kept equals a whole-file read
followed by one-shot resampling and truncation, sample for sample."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from acetune.audio import decode_audio, load_audio, resample, synthesize_song, to_stereo, truncate, write_audio
from acetune.audio.reader import BLOCK_FRAMES
from acetune.errors import AudioError

SR = 48_000


def _whole_then_truncate(path, max_duration_s):
    """What load_audio computed before it streamed: decode all in one read, stereo, one-shot resample, keep
    the start. libsndfile reads in one call (no seek) where it can: its MP3 decoder gives other samples when
    reads split, or after a seek to the start (as `sf.read` does)."""
    if path.suffix == ".m4a":
        waveform, rate = decode_audio(path)  # FFmpeg decodes packet by packet however it is read
    else:
        with sf.SoundFile(path) as handle:
            waveform, rate = np.ascontiguousarray(handle.read(dtype="float32", always_2d=True).T), handle.samplerate
    return truncate(resample(to_stereo(waveform), rate, SR), SR, max_duration_s)


@pytest.mark.parametrize("rate", [44_100, 22_050, 96_000])
def test_soxr_stream_equals_one_shot(rate):
    x = np.random.default_rng(0).uniform(-1, 1, (3 * rate + 17, 2)).astype(np.float32)
    stream = soxr.ResampleStream(rate, SR, 2, dtype="float32", quality="HQ")
    pieces = [stream.resample_chunk(x[i:i + 5000], last=False) for i in range(0, len(x), 5000)]
    pieces.append(stream.resample_chunk(np.zeros((0, 2), np.float32), last=True))
    np.testing.assert_array_equal(np.concatenate(pieces), soxr.resample(x, rate, SR, quality="HQ"))


@pytest.mark.parametrize(("ext", "rate", "channels"), [("wav", 44_100, 2), ("flac", 22_050, 1), ("mp3", 44_100, 2), ("mp3", 22_050, 1),
                                                       ("m4a", 44_100, 2), ("wav", SR, 2)])
@pytest.mark.parametrize("max_duration_s", [None, 1.0, 2.5])
def test_streamed_load_equals_whole_file_processing(tmp_path, ext, rate, channels, max_duration_s):
    # longer than two blocks, so the stream crosses block boundaries and stops in the middle of one
    seconds = 3 * BLOCK_FRAMES / rate + 0.3
    song = synthesize_song(seed=1, duration_s=seconds, bpm=110.0, sample_rate=rate)[:channels]
    path = write_audio(tmp_path / f"song.{ext}", song, rate)
    prepared = load_audio(path, max_duration_s=max_duration_s)
    expected = _whole_then_truncate(path, max_duration_s)
    np.testing.assert_array_equal(prepared.waveform, expected)
    assert prepared.truncated is (max_duration_s is not None)
    assert prepared.source_duration_s == pytest.approx(seconds, abs=0.05)


def test_only_the_kept_start_is_decoded(tmp_path):
    """A NaN after the kept part is never read, so it cannot fail the file; reading it all does."""
    data = np.zeros((4 * SR, 2), dtype=np.float32)
    data[:, :] = 0.25
    data[int(3.5 * SR), 0] = np.nan
    path = tmp_path / "late_nan.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    kept = load_audio(path, max_duration_s=1.0)
    assert kept.waveform.shape == (2, SR) and kept.truncated
    assert kept.source_duration_s == pytest.approx(4.0)  # from the header, not by decoding the rest
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path, max_duration_s=None)


def test_raw_adts_aac_length_is_counted_when_the_start_is_kept(tmp_path):
    """Raw ADTS has no length in its headers: the rest is decoded (not kept) to count it."""
    song = synthesize_song(seed=2, duration_s=3.0, bpm=100.0)
    prepared = load_audio(write_audio(tmp_path / "song.aac", song, SR), max_duration_s=1.0)
    assert prepared.waveform.shape == (2, SR) and prepared.truncated
    assert prepared.source_duration_s == pytest.approx(3.0, abs=0.05)
