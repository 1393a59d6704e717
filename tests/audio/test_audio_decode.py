"""Round trips through every supported format, and every kind of unusable file becoming an AudioError."""

from __future__ import annotations

import os
import re
import threading

import av
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


def _zeroed_header(tmp_path):
    """A WAV whose 44-byte header was zeroed. FFmpeg, left to guess, takes this one for Nintendo "adp"
    ADPCM and "decodes" 4 s of music into 14 s of full-scale noise."""
    path = tmp_path / "zeroed.wav"
    sf.write(path, np.repeat(sine(440.0, 4.0, SR, 0.5), 2, axis=0).T, SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[:44] = bytes(44)
    path.write_bytes(bytes(data))
    with av.open(str(path)) as guessed:  # the trap is armed: FFmpeg's own probe does guess a raw format
        assert guessed.format.name == "adp"
    return path, "could only guess 'adp'"


def _fifo(tmp_path):
    path = tmp_path / "pipe.wav"
    os.mkfifo(path)  # opening it for reading would wait forever for a writer
    return path, "named pipe (FIFO)"


def _dangling_link(tmp_path):
    path = tmp_path / "gone.wav"
    path.symlink_to(tmp_path / "deleted.wav")
    return path, "a link to a missing file"


def _link_loop(tmp_path):
    path, other = tmp_path / "loop.wav", tmp_path / "back.wav"
    path.symlink_to(other)
    other.symlink_to(path)
    return path, "a link that loops"


BAD_FILES = [_zero_byte, _truncated_flac, _random_mp3, _unsupported, _missing, _zero_samples, _nan_samples,
             _zeroed_header, _fifo, _dangling_link, _link_loop]


def _finishes(call, *args):
    """Run `call` on a daemon thread: a reader that blocks on a FIFO fails the test instead of hanging it."""
    outcome: dict[str, object] = {}

    def target():
        try:
            outcome["value"] = call(*args)
        except BaseException as err:  # handed back to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), f"{call.__name__} blocked on {args}"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("reader", [decode_audio, load_audio], ids=["decode_audio", "load_audio"])
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, make, reader):
    path, reason = make(tmp_path)
    with pytest.raises(AudioError) as caught:
        _finishes(reader, path)
    assert path.name in str(caught.value)
    assert reason in str(caught.value)
    assert caught.value.path == path
    assert caught.value.fix


@pytest.mark.parametrize("make", [_zero_byte, _random_mp3, _unsupported, _missing, _zero_samples, _zeroed_header,
                                  _fifo, _dangling_link, _link_loop])
def test_probe_rejects_unusable_files(tmp_path, make):
    path, reason = make(tmp_path)
    with pytest.raises(AudioError, match=re.escape(reason)) as caught:
        _finishes(probe_audio, path)
    assert path.name in str(caught.value)


def test_links_to_good_files_are_followed(tmp_path, song):
    real = write_audio(tmp_path / "real.flac", song, SR)
    link = tmp_path / "link.flac"
    link.symlink_to(real)
    np.testing.assert_array_equal(decode_audio(link)[0], decode_audio(real)[0])


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_truncated_wav_is_read_up_to_its_end_with_a_note(tmp_path, song, subtype, caplog):
    path = tmp_path / "cut.wav"
    sf.write(path, song.T, SR, subtype=subtype)  # 4 s
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still promises 4 s
    readable = sf.read(path, dtype="float32", always_2d=True)[0].T
    assert 1.9 * SR < readable.shape[1] < 2.0 * SR
    prepared = load_audio(path)
    np.testing.assert_array_equal(prepared.waveform, readable)
    assert len(prepared.notes) == 1
    assert "truncated" in prepared.notes[0] and "promises 4.00 s" in prepared.notes[0]
    assert f"{readable.shape[1] / SR:.2f} s ({readable.shape[1]} of {song.shape[1]} samples)" in prepared.notes[0]
    with caplog.at_level("WARNING", logger="acetune.audio.decode"):
        waveform, _ = decode_audio(path)
    np.testing.assert_array_equal(waveform, readable)
    assert "truncated" in caplog.text and path.name in caplog.text


def test_whole_files_carry_no_note(tmp_path, song):
    for ext in ("wav", "flac", "m4a"):
        assert load_audio(write_audio(tmp_path / f"song.{ext}", song, SR)).notes == ()


def test_folder_is_not_an_audio_file(tmp_path):
    folder = tmp_path / "album.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="a folder, not an audio file"):
        decode_audio(folder)


def test_a_real_container_under_another_audio_extension_still_decodes(tmp_path, song):
    """Only guesses are refused: an MP4 (AAC) file saved as .mp3 is recognised by its header and read."""
    real = write_audio(tmp_path / "song.m4a", song, SR)
    renamed = tmp_path / "song.mp3"
    renamed.write_bytes(real.read_bytes())
    np.testing.assert_array_equal(decode_audio(renamed)[0], decode_audio(real)[0])
