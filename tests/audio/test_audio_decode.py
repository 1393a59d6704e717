"""Round trips through every supported format, and every kind of unusable file becoming an AudioError."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from acetune.audio import AudioInfo, decode_audio, load_audio, probe_audio, sine, synthesize_song, write_audio
from acetune.errors import AudioError

SR = 48_000

FORMATS = ["wav", "flac", "mp3", "ogg", "opus", "m4a", "aac"]


@pytest.mark.parametrize("ext", FORMATS)
def test_round_trip_keeps_shape_rate_duration(tmp_path, song, ext):
    path = write_audio(tmp_path / f"song.{ext}", song, SR)
    waveform, rate = decode_audio(path)
    assert rate == SR
    assert waveform.dtype == np.float32
    assert waveform.shape[0] == 2
    # lossy codecs may add an encoder delay of a frame or two; 50 ms is far more than any of them
    assert abs(waveform.shape[1] - song.shape[1]) <= 0.05 * SR
    info = probe_audio(path)
    assert (info.sample_rate, info.channels) == (SR, 2)
    assert info.duration_s == pytest.approx(song.shape[1] / SR, abs=0.05)


@pytest.mark.parametrize("ext", FORMATS)
def test_round_trip_keeps_pitch(tmp_path, peak_frequency, ext):
    tone = np.repeat(sine(1000.0, 1.0, SR, 0.5), 2, axis=0)
    waveform, rate = decode_audio(write_audio(tmp_path / f"tone.{ext}", tone, SR))
    assert peak_frequency(waveform, rate) == pytest.approx(1000.0, abs=2.0)
    rms = float(np.sqrt(np.mean(waveform**2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


@pytest.mark.parametrize(("ext", "atol"), [("wav", 0.0), ("flac", 1e-6)])
def test_lossless_formats_are_sample_exact(tmp_path, song, ext, atol):
    waveform, _ = decode_audio(write_audio(tmp_path / f"song.{ext}", song, SR))
    np.testing.assert_allclose(waveform, song, rtol=0, atol=atol)


def test_probe_reads_headers(tmp_path, song):
    path = write_audio(tmp_path / "song.flac", song, SR)
    assert probe_audio(path) == AudioInfo(path, SR, 2, song.shape[1])
    assert probe_audio(path).duration_s == pytest.approx(4.0)


def _zero_byte(tmp_path):
    path = tmp_path / "empty_bytes.wav"
    path.write_bytes(b"")
    return path, "empty"


def _truncated_flac(tmp_path):
    path = write_audio(tmp_path / "cut.flac", synthesize_song(seed=3, duration_s=3.0, bpm=100.0), SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 5])
    return path, "cannot decode"


def _random_mp3(tmp_path):
    path = tmp_path / "noise_bytes.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path, "cannot decode"


def _unsupported(tmp_path):
    path = tmp_path / "song.xyz"
    path.write_bytes(b"not audio")
    return path, "unsupported"


def _missing(tmp_path):
    return tmp_path / "missing.wav", "not found"


def _zero_samples(tmp_path):
    path = write_audio(tmp_path / "no_samples.wav", np.zeros((2, 0), dtype=np.float32), SR)
    return path, "no audio samples"


def _nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    data = np.zeros((1000, 2), dtype=np.float32)
    data[10, 1] = np.nan
    sf.write(path, data, SR, subtype="FLOAT")  # write_audio itself refuses NaN
    return path, "NaN"


BAD_FILES = [_zero_byte, _truncated_flac, _random_mp3, _unsupported, _missing, _zero_samples, _nan_samples]


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("reader", [decode_audio, load_audio], ids=["decode_audio", "load_audio"])
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, make, reader):
    path, reason = make(tmp_path)
    with pytest.raises(AudioError) as caught:
        reader(path)
    assert path.name in str(caught.value)
    assert reason in str(caught.value)
    assert caught.value.path == path
    assert caught.value.fix


@pytest.mark.parametrize("make", [_zero_byte, _random_mp3, _unsupported, _missing, _zero_samples])
def test_probe_rejects_unusable_files(tmp_path, make):
    path, reason = make(tmp_path)
    with pytest.raises(AudioError, match=reason) as caught:
        probe_audio(path)
    assert path.name in str(caught.value)


def test_folder_is_not_an_audio_file(tmp_path):
    folder = tmp_path / "album.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="not a regular file"):
        decode_audio(folder)
