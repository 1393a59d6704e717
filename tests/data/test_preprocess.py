"""Preprocessing on the tiny bundle: formats, labels, bad files, incremental reruns, interruption,
two-pass equivalence, fingerprint refusal, and the stored tensors against a direct computation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acetune.audio import synthesize_song, write_audio
from acetune.data.cache import CacheReader, read_index
from acetune.data.dataset import scan_dataset
from acetune.data.preprocess import PreprocessConfig, plan_samples, preprocess
from acetune.cli.exit_codes import OK, PARTIAL, USER_ERROR
from acetune.errors import CacheError, CacheMismatchError, ConfigError
from acetune.events import Finished, Progressed, Skipped, Started, Warned

SONGS = {  # relative path -> (bpm, key, seconds)
    "a_pop.wav": (120, "C major", 3.0),
    "nested/b_ballad.flac": (80, "A minor", 2.5),
    "c_rock.mp3": (140, "E minor", 2.2),
    "d_jazz.ogg": (100, "F major", 2.0),
}


@pytest.fixture()
def songs(tmp_path) -> Path:
    root = tmp_path / "songs"
    for index, (name, (bpm, key, seconds)) in enumerate(SONGS.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, synthesize_song(seed=index, duration_s=seconds, bpm=bpm, key=key), 48000)
    (root / "a_pop.json").write_text(json.dumps({"caption": "bright pop", "bpm": 120, "keyscale": "C major",
                                                 "lyrics": "[Verse]\nla la la", "language": "en"}))
    (root / "nested" / "b_ballad.caption.txt").write_text("slow piano ballad")
    (root / "broken.wav").write_bytes(b"RIFF0000WAVEfmt not really")
    return root


def run(dataset_dir: Path, bundle: Path, out: Path, config: PreprocessConfig = PreprocessConfig(), **kwargs):
    dataset = scan_dataset(dataset_dir).dataset
    events = list(preprocess(dataset, bundle, out, config, **kwargs))
    return events, next(e for e in reversed(events) if isinstance(e, Finished))


def cache_tensors(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    reader = CacheReader(folder)
    return {e.id: {k: v.clone() for k, v in reader.load(i).items()} for i, e in enumerate(reader.entries)}


def test_preprocess_builds_a_cache_and_skips_bad_files(songs, tiny_bundle, tmp_path):
    out = tmp_path / "cache"
    events, finished = run(songs, tiny_bundle, out)
    assert isinstance(events[0], Started) and finished.reason == "complete"
    assert [s.path.name for s in events if isinstance(s, Skipped)] == ["broken.wav"]
    assert sum(isinstance(e, Progressed) for e in events) == 5
    assert finished.summary["cached"] == 4 and finished.summary["failed"] == 1
    reader = CacheReader(out)
    entry = reader.entries[reader.index_of("a_pop.wav")]
    tensors = reader.load(reader.index_of("a_pop.wav"))
    assert tensors["target_latents"].shape == (75, 8)  # 3 s at 25 frames/s, 8 latent channels
    assert entry.latent_length == 75
    meta = entry.metadata
    assert meta["caption"] == "bright pop" and "- bpm: 120\n" in meta["prompt"]
    import hashlib

    assert meta["content_hash"] == hashlib.sha256((songs / "a_pop.wav").read_bytes()).hexdigest()
    assert meta["lyric_text"] == "# Languages\nen\n\n# Lyric\n[Verse]\nla la la<|endoftext|>"
    # packed condition: lyric tokens + one timbre slot + caption tokens, all valid, nothing padded
    assert tensors["encoder_hidden_states"].shape == (meta["lyric_length"] + 1 + meta["text_length"], 64)
    ballad = reader.entries[reader.index_of("nested/b_ballad.flac")].metadata
    assert ballad["caption"] == "slow piano ballad" and ballad["lyric_text"].endswith("[Instrumental]<|endoftext|>")
    assert "- duration: 2 seconds\n" in ballad["prompt"]  # unlabelled: the file's own length
    assert json.loads((out / "fingerprint.json").read_text())["variant"] == "turbo"


def test_stored_condition_equals_a_direct_encoder_call(songs, tiny_bundle, tmp_path):
    from acetune.model import load_model
    from acetune.model.text_encoder import load_text_encoder

    out = tmp_path / "cache"
    run(songs, tiny_bundle, out)
    plan = next(p for p in plan_samples(scan_dataset(songs).dataset, PreprocessConfig())[0] if p.id == "a_pop.wav")
    encoder = load_text_encoder(tiny_bundle / "Qwen3-Embedding-0.6B")
    loaded = load_model(tiny_bundle / "acestep-v15-turbo")
    text, lyrics = encoder.encode_caption(plan.prompt), encoder.embed_lyrics(plan.lyric_text)
    with torch.no_grad():
        states, mask = loaded.model.encoder(text[None], torch.ones(1, len(text)), lyrics[None],
                                            torch.ones(1, len(lyrics)), loaded.silence_latent[:, :750],
                                            torch.tensor([0]))
    cached = cache_tensors(out)["a_pop.wav"]["encoder_hidden_states"]
    assert bool(mask.all()) and torch.allclose(cached, states[0], atol=1e-6)


def test_incremental_rerun_adds_changes_and_drops(songs, tiny_bundle, tmp_path):
    out = tmp_path / "cache"
    run(songs, tiny_bundle, out)
    first = cache_tensors(out)
    _, again = run(songs, tiny_bundle, out)
    assert (again.summary["computed"], again.summary["reused"]) == (0, 4)
    (songs / "d_jazz.json").write_text(json.dumps({"caption": "smoky jazz trio"}))  # a label changed
    (songs / "c_rock.mp3").unlink()  # a song deleted
    write_audio(songs / "e_new.wav", synthesize_song(seed=9, duration_s=2.0, bpm=90, key="D major"), 48000)
    _, third = run(songs, tiny_bundle, out)
    assert third.summary["computed"] == 2 and third.summary["reused"] == 2 and third.summary["removed"] == 1
    now = cache_tensors(out)
    assert set(now) == {"a_pop.wav", "nested/b_ballad.flac", "d_jazz.ogg", "e_new.wav"}
    assert torch.equal(now["a_pop.wav"]["target_latents"], first["a_pop.wav"]["target_latents"])
    assert not torch.equal(now["d_jazz.ogg"]["encoder_hidden_states"], first["d_jazz.ogg"]["encoder_hidden_states"])
    shards = {e.shard for e in read_index(out)}
    assert {p.name for p in out.glob("shard-*.safetensors")} == shards  # no orphaned shards


def test_interrupted_run_resumes_to_the_same_cache(songs, tiny_bundle, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    run(songs, tiny_bundle, reference)
    out = tmp_path / "cache"
    config = PreprocessConfig(flush_every=1)
    calls = {"n": 0}
    import acetune.data.preprocess as module

    real = module.encode_condition

    def dies_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a sample
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "encode_condition", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(songs, tiny_bundle, out, config)
    assert len(CacheReader(out)) == 2  # the finished samples survived
    monkeypatch.setattr(module, "encode_condition", real)
    _, finished = run(songs, tiny_bundle, out, config)
    assert finished.summary["reused"] == 2 and finished.summary["computed"] == 2
    expected, got = cache_tensors(reference), cache_tensors(out)
    assert expected.keys() == got.keys()
    for sample_id in expected:
        for name in expected[sample_id]:
            assert torch.equal(expected[sample_id][name], got[sample_id][name]), (sample_id, name)


def test_stop_request_ends_with_stopped(songs, tiny_bundle, tmp_path):
    seen = []
    events, finished = run(songs, tiny_bundle, tmp_path / "cache", should_stop=lambda: len(seen.append(1) or seen) > 2)
    assert finished.reason == "stopped"  # asked before the third file: a_pop done, broken.wav skipped
    assert [e.id for e in read_index(tmp_path / "cache")] == ["a_pop.wav"]


def test_two_pass_equals_one_pass(songs, tiny_bundle, tmp_path):
    run(songs, tiny_bundle, tmp_path / "one")
    _, finished = run(songs, tiny_bundle, tmp_path / "two", PreprocessConfig(two_pass=True))
    assert finished.summary["cached"] == 4 and not (tmp_path / "two" / ".pass1").exists()
    one, two = cache_tensors(tmp_path / "one"), cache_tensors(tmp_path / "two")
    assert one.keys() == two.keys()
    for sample_id in one:
        for name in one[sample_id]:
            assert torch.equal(one[sample_id][name], two[sample_id][name]), (sample_id, name)


def test_cache_from_another_checkpoint_or_options_is_refused(songs, tiny_bundle, tmp_path):
    from acetune.model.tiny_bundle import write_tiny_bundle

    out = tmp_path / "cache"
    run(songs, tiny_bundle, out)
    other = write_tiny_bundle(tmp_path / "other-checkpoints", seed=1)
    with pytest.raises(CacheMismatchError, match="model: cache") as err:
        run(songs, other, out)
    assert "vae: cache" in str(err.value) and "--rebuild" in str(err.value)
    with pytest.raises(CacheMismatchError, match="options.normalize: cache 'none', now 'peak'"):
        run(songs, tiny_bundle, out, PreprocessConfig(normalize="peak"))
    (out / "my-notes.txt").write_text("mine")
    _, rebuilt = run(songs, other, out, rebuild=True)
    assert rebuilt.summary["computed"] == 4 and (out / "my-notes.txt").read_text() == "mine"


def test_output_folder_that_is_not_a_cache_is_refused(songs, tiny_bundle, tmp_path):
    out = tmp_path / "elsewhere"
    out.mkdir()
    (out / "thesis.docx").write_text("important")
    with pytest.raises(CacheError, match="not an acetune cache"):
        run(songs, tiny_bundle, out)
    assert (out / "thesis.docx").read_text() == "important"


def test_all_bad_files_end_failed(tmp_path, tiny_bundle):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "x.wav").write_bytes(b"")
    (root / "y.flac").write_bytes(b"not flac")
    _, finished = run(root, tiny_bundle, tmp_path / "cache")
    assert finished.reason == "failed" and finished.summary["failed"] == 2


def test_cli_exits_2_when_nothing_is_usable(tmp_path, tiny_bundle, capsys):
    from acetune.cli.app import main

    root = tmp_path / "bad"
    root.mkdir()
    (root / "x.wav").write_bytes(b"")
    code = main(["preprocess", "--audio-dir", str(root), "--checkpoint-dir", str(tiny_bundle),
                 "--out", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert code == USER_ERROR and "x.wav" in captured.out and "no usable samples" in captured.err


def test_missing_text_encoder_is_named(songs, tiny_bundle, tmp_path):
    from acetune.errors import ModelLoadError

    broken = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, broken)
    shutil.rmtree(broken / "Qwen3-Embedding-0.6B")
    with pytest.raises(ModelLoadError, match="the text encoder is missing"):
        run(songs, broken, tmp_path / "cache")


def test_silent_song_uses_the_silence_latent(tmp_path, tiny_bundle):
    import numpy as np

    from acetune.model import load_model

    root = tmp_path / "quiet"
    root.mkdir()
    write_audio(root / "silence.wav", np.zeros((2, 48000), dtype=np.float32), 48000)
    run(root, tiny_bundle, tmp_path / "cache")
    latents = cache_tensors(tmp_path / "cache")["silence.wav"]["target_latents"]
    silence = load_model(tiny_bundle / "acestep-v15-turbo").silence_latent
    assert torch.equal(latents, silence[0, :25])
    assert read_index(tmp_path / "cache")[0].metadata["silent"] is True


def test_preprocess_then_validate_from_the_cli(songs, tiny_bundle, tmp_path, capsys):
    from acetune.cli.app import main

    out = tmp_path / "cache"
    code = main(["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tiny_bundle), "--out", str(out),
                 "--tag", "zz-style", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == PARTIAL, printed  # broken.wav was skipped; the cache holds the other four
    assert "broken.wav" in printed and "4 samples" in printed
    assert "2 notice(s)" in printed  # c_rock.mp3 and d_jazz.ogg have no caption: still cached, and listed
    assert "c_rock.mp3" in printed and "d_jazz.ogg" in printed and "'zz-style'" in printed
    assert read_index(out)[0].metadata["caption"].startswith("zz-style")
    assert main(["dataset", "validate", str(out), "--checkpoint-dir", str(tiny_bundle)]) == 0
    report = capsys.readouterr().out
    assert "fingerprint: matches" in report and "length buckets" in report
    assert "warning c_rock.mp3: no caption or genre: trained on the caption 'zz-style'" in report
    assert "a_pop.wav: no caption" not in report and report.rstrip().endswith("ok")
    other = tmp_path / "cp2"
    shutil.copytree(tiny_bundle, other)
    (other / "acestep-v15-turbo" / "silence_latent.pt").write_bytes(
        (tiny_bundle / "vae" / "config.json").read_bytes())  # a different file -> different digest
    assert main(["dataset", "validate", str(out), "--checkpoint-dir", str(other)]) == 2
    assert "fingerprint MISMATCH" in capsys.readouterr().out


# --- bad audio never stops, hangs or silently corrupts a run -----------------------------------------------


def _song(path: Path, seconds: float, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, synthesize_song(seed=seed, duration_s=seconds, bpm=100, key="D minor"), 48000)


def _bad_folder(root: Path) -> dict[str, str]:
    """Two good songs and every kind of bad file; returns file name -> the reason the summary must give."""
    import numpy as np
    import soundfile as sf

    _song(root / "good_a.wav", 1.5)
    _song(root / "good_b.flac", 1.2, seed=1)
    _song(root / "tiny.wav", 0.03)
    sf.write(root / "one_sample.wav", np.full((1, 2), 0.5, dtype=np.float32), 48000)
    tone = np.repeat(0.5 * np.sin(2 * np.pi * 440.0 * np.arange(4 * 48000) / 48000)[None], 2, axis=0)
    sf.write(root / "zeroed.wav", tone.T, 48000, subtype="PCM_16")
    data = bytearray((root / "zeroed.wav").read_bytes())
    data[:44] = bytes(44)  # FFmpeg would take the rest for "adp" ADPCM: 14 s of noise
    (root / "zeroed.wav").write_bytes(bytes(data))
    _song(root / "cut.wav", 3.0, seed=2)
    (root / "cut.wav").write_bytes((root / "cut.wav").read_bytes()[:700_000])  # ~1.8 s left; header still says 3 s
    nan = np.full((48000, 2), 0.1, dtype=np.float32)
    nan[100, 0] = np.nan
    sf.write(root / "nan.wav", nan, 48000, subtype="FLOAT")
    os.mkfifo(root / "x.wav")
    (root / "y.wav").mkdir()
    (root / "dangling.wav").symlink_to(root / "deleted.wav")
    (root / "loop1.wav").symlink_to(root / "loop2.wav")
    (root / "loop2.wav").symlink_to(root / "loop1.wav")
    _song(root / "broken [red] 💥.wav", 0.03)
    return {"tiny.wav": "too short", "one_sample.wav": "too short", "zeroed.wav": "could only guess 'adp'",
            "nan.wav": "NaN", "x.wav": "named pipe (FIFO)", "y.wav": "a folder, not an audio file",
            "dangling.wav": "a link to a missing file", "loop1.wav": "a link that loops",
            "loop2.wav": "a link that loops", "broken [red] 💥.wav": "too short"}


def test_cli_preprocesses_a_folder_of_bad_files_and_exits_3(tmp_path, tiny_bundle):
    """The acceptance run, as a user types it: no traceback, no hang, each bad file named with its reason."""
    root = tmp_path / "songs"
    expected = _bad_folder(root)
    out = tmp_path / "cache"
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "acetune", "preprocess", "--audio-dir", str(root), "--checkpoint-dir", str(tiny_bundle),
         "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True, timeout=900,  # a hang on the FIFO fails here instead of blocking the suite
        env={**os.environ, "PYTHONPATH": str(repo), "COLUMNS": "400"}, cwd=repo)
    printed = done.stdout + done.stderr
    assert done.returncode == PARTIAL, printed
    assert "Traceback" not in printed
    assert sorted(e.id for e in read_index(out)) == ["cut.wav", "good_a.wav", "good_b.flac"]
    table = printed[printed.index("file(s) not used"):]
    for name, reason in expected.items():
        row = next(line for line in table.splitlines() if f"{root}/{name} " in line)
        assert reason in row, (name, row)
    assert "cut.wav: the file is truncated: its header promises 3.00 s but only" in printed
    assert read_index(out)[0].metadata["source_duration_s"] < 3.0


@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
@pytest.mark.parametrize("stage", ["encode_audio_and_text", "encode_condition"])
def test_an_encoder_error_skips_that_song_only(songs, tiny_bundle, tmp_path, monkeypatch, two_pass, stage):
    import acetune.data.preprocess as module

    real = getattr(module, stage)
    calls = {"n": 0}

    def fails_on_the_second_song(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the songs are encoded in id order: a_pop, c_rock, ...
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, stage, fails_on_the_second_song)
    events, finished = run(songs, tiny_bundle, tmp_path / "cache", PreprocessConfig(two_pass=two_pass))
    skipped = {e.path.name: e.reason for e in events if isinstance(e, Skipped)}
    assert skipped == {"broken.wav": skipped["broken.wav"],
                       "c_rock.mp3": "preprocessing failed: RuntimeError: CUDA error: an illegal memory access was "
                                     "encountered"}
    assert finished.reason == "complete" and finished.summary["failed"] == 2
    assert sorted(e.id for e in read_index(tmp_path / "cache")) == ["a_pop.wav", "d_jazz.ogg", "nested/b_ballad.flac"]


def test_songs_shorter_than_the_minimum_are_skipped_before_encoding(tmp_path, tiny_bundle, monkeypatch):
    import acetune.data.preprocess as module

    root = tmp_path / "songs"
    _song(root / "long_enough.wav", 1.0)
    _song(root / "just_short.wav", 0.99)
    write_audio(root / "one_sample.wav", synthesize_song(seed=0, duration_s=1.0, bpm=100)[:, :1], 48000)
    encoded = []
    real = module.encode_audio_and_text
    monkeypatch.setattr(module, "encode_audio_and_text", lambda waveform, *a, **k: encoded.append(waveform.shape[1])
                        or real(waveform, *a, **k))
    events, finished = run(root, tiny_bundle, tmp_path / "cache")
    assert encoded == [48000]  # the VAE never saw the short ones
    skipped = {e.path.name: e.reason for e in events if isinstance(e, Skipped)}
    assert skipped == {"just_short.wav": "too short: 0.990 s (47520 samples at 48 kHz); songs must be at least 1 s",
                       "one_sample.wav": "too short: 0.000 s (1 samples at 48 kHz); songs must be at least 1 s"}
    assert read_index(tmp_path / "cache")[0].latent_length == 25
    with pytest.raises(ConfigError, match="--max-duration of at least 1 s"):
        run(root, tiny_bundle, tmp_path / "other", PreprocessConfig(max_duration_s=0.5))


def test_a_file_gone_or_swapped_for_a_fifo_after_the_scan_is_skipped(tmp_path, tiny_bundle):
    root = tmp_path / "songs"
    for name in ("a.wav", "b.wav", "c.wav"):
        _song(root / name, 1.0)
    dataset = scan_dataset(root).dataset
    (root / "b.wav").unlink()
    (root / "c.wav").unlink()
    os.mkfifo(root / "c.wav")  # hashing it must not wait for a writer
    events = list(preprocess(dataset, tiny_bundle, tmp_path / "cache"))
    skipped = {e.path.name: e.reason for e in events if isinstance(e, Skipped)}
    assert skipped == {"b.wav": "cannot be read: No such file or directory",
                       "c.wav": "cannot be read: not a regular file; never read"}
    assert [e.id for e in read_index(tmp_path / "cache")] == ["a.wav"]


# "x [/x] y.wav" is a folder "x [" holding "x] y.wav"; "\u202e" is the right-to-left override
NAMES = ["broken [red] 💥.wav", "x [/x] y.wav", "new\nline.wav", "  leading spaces.wav", "שיר עברי.wav",
         "evil\u202eavw.exe.wav"]


def test_names_with_markup_and_odd_characters_print_safely(tmp_path, tiny_bundle, capsys, monkeypatch):
    """Each name reaches the summary once, escaped, with nothing hidden or reordered, and no MarkupError."""
    from acetune.cli.app import main

    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    root = tmp_path / "songs"
    _song(root / "good.wav", 1.0)
    for name in NAMES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")  # empty: skipped while preprocessing, printed as it is
    not_utf8 = Path(os.fsdecode(bytes(root) + b"/caf\xe9 [bold].wav"))
    not_utf8.write_bytes(b"")
    code = main(["preprocess", "--audio-dir", str(root), "--checkpoint-dir", str(tiny_bundle),
                 "--out", str(tmp_path / "cache"), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == PARTIAL, printed
    shown = {"broken [red] 💥.wav", "x [/x] y.wav", "new\\nline.wav", "  leading spaces.wav", "שיר עברי.wav",
             "evil\\u202eavw.exe.wav", "caf\\xe9 [bold].wav"}
    rows = [line for line in printed.splitlines() if "│" in line]
    for name in shown:
        assert sum(f"{root}/{name} " in row for row in rows) == 1, (name, printed)
    assert "\u202e" not in printed and "\n" + "line.wav" not in printed


def test_render_escapes_every_user_string():
    from rich.console import Console

    from acetune.cli.progress import render
    from acetune.cli.text import printable

    events = [Started("preprocess", 1), Skipped(Path("/songs/a [red]b[/red] \u202e.wav"), "reason [/x]\nmore"),
              Warned("audio", "/songs/[bold]c.wav: note"), Progressed(1, 1, "d [/] \udce9.wav"),
              Finished("preprocess", "complete", {})]
    for terminal in (False, True):
        console = Console(force_terminal=terminal, width=200, color_system=None, record=True)
        finished, skipped = render(events, console)
        text = console.export_text()
        assert finished is events[-1] and skipped == [events[1]]
        assert "skipped /songs/a [red]b[/red] \\u202e.wav: reason [/x]\\nmore" in text
        assert "warning /songs/[bold]c.wav: note" in text
        if not terminal:
            assert "[1/1] d [/] \\xe9.wav" in text
    assert printable("plain name.wav") == "plain name.wav"
