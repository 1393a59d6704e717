"""Through the CLI: a damaged cache stops validate and training naming the song; `model info` says whether it
read a local folder or downloaded from the Hub (and never downloads a misspelt local path); seeds out of
range and unusable devices are named errors before any model is loaded."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main
from acetune.data.cache import INDEX_FILE, read_index


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("integrity") / "songs"
    for seed in range(2):
        write_audio(root / f"song{seed}.wav", synthesize_song(seed=seed, duration_s=2.0, bpm=120, key="C major"),
                    48000)
        (root / f"song{seed}.json").write_text(json.dumps({"caption": f"song {seed}"}))
    return root


@pytest.fixture(scope="module")
def made_cache(songs, tiny_bundle) -> Path:
    out = songs.parent / "cache"
    assert main(["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tiny_bundle), "--out", str(out)]) == 0
    return out


@pytest.fixture()
def cache(made_cache, tmp_path) -> Path:
    """A copy of the cache each test may damage."""
    return shutil.copytree(made_cache, tmp_path / "cache")


def flip_a_byte(cache: Path, sample_id: str) -> None:
    entry = next(e for e in read_index(cache) if e.id == sample_id)
    data = bytearray((cache / entry.shard).read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    start = json.loads(data[8:8 + header_len])[entry.key("encoder_hidden_states")]["data_offsets"][0]
    data[8 + header_len + start + 3] ^= 0x01
    (cache / entry.shard).write_bytes(bytes(data))


def test_a_flipped_byte_stops_validate_and_training_naming_the_song(cache, tiny_bundle, tmp_path, capsys):
    assert main(["dataset", "validate", str(cache)]) == 0
    assert "no checksum" not in capsys.readouterr().out
    flip_a_byte(cache, "song1.wav")
    assert main(["dataset", "validate", str(cache)]) == 2
    captured = capsys.readouterr()
    assert "problem song1.wav: sample 'song1.wav' fails its checksum" in captured.out
    assert "acetune preprocess --rebuild" in captured.err
    code = main(["train", "--cache", str(cache), "--checkpoint-dir", str(tiny_bundle), "--out", str(tmp_path / "run"),
                 "--preset", "quick_test", "--set", "data.crop_frames=24", "--set", "loop.epochs=2"])
    captured = capsys.readouterr()
    assert code == 2 and "sample 'song1.wav' fails its checksum" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_validate_says_when_a_cache_has_no_checksums(cache, capsys):
    index = json.loads((cache / INDEX_FILE).read_text())
    for row in index["samples"]:
        del row["checksum"]
    (cache / INDEX_FILE).write_text(json.dumps({"format_version": 1, "samples": index["samples"]}))
    assert main(["dataset", "validate", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 samples carry no checksum" in out and "acetune preprocess --rebuild" in out


@pytest.mark.parametrize("args, words", [
    (["--set", "loop.device=meta"], "device 'meta' cannot run acetune"),
    (["--seed", "99999999999999999999"], "loop.seed = 99999999999999999999 must be in [0, 9223372036854775807]"),
    (["--set", "audition.seeds=[42, -1]"], "audition.seeds = [42, -1] must each be in"),
])
def test_train_refuses_unusable_devices_and_seeds_by_name(cache, tiny_bundle, tmp_path, capsys, args, words):
    code = main(["train", "--cache", str(cache), "--checkpoint-dir", str(tiny_bundle), "--out", str(tmp_path / "run"),
                 "--preset", "quick_test", "--set", "data.crop_frames=24", *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [
    ["generate", "--caption", "x", "--duration", "2"],
    ["preprocess", "--audio-dir", "SONGS", "--out", "OUT"],
])
@pytest.mark.parametrize("seed", ["99999999999999999999", "-1"])
def test_generate_and_preprocess_refuse_a_seed_out_of_range(command, seed, songs, tiny_bundle, tmp_path, capsys):
    argv = [str(songs) if a == "SONGS" else str(tmp_path / "out") if a == "OUT" else a for a in command]
    code = main([*argv, "--checkpoint-dir", str(tiny_bundle), "--seed", seed])
    err = capsys.readouterr().err
    named = "--seed" if command[0] == "generate" else "preprocess.seed ="  # preprocess: its config field's key
    assert code == 2 and f"{named} {seed} must be in [0, 9223372036854775807]" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.fixture()
def fake_hub(tiny_checkpoint, tmp_path, monkeypatch):
    """A Hub that serves the tiny checkpoint as every repo; records what was asked for."""
    asked = []
    snapshot = tmp_path / "hf-cache" / "snapshot"
    shutil.copytree(tiny_checkpoint, snapshot / "acestep-v15-turbo")

    def snapshot_download(repo_id, allow_patterns=None, **_):
        asked.append(repo_id)
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    monkeypatch.chdir(tmp_path)
    return asked


def test_model_info_says_it_downloads_a_hub_repo(fake_hub, capsys):
    assert main(["model", "info", "ACE-Step/Ace-Step1.5"]) == 0
    out = capsys.readouterr().out
    assert "downloading ACE-Step/Ace-Step1.5 (subfolder acestep-v15-turbo) from the Hugging Face Hub" in out
    assert "from the Hugging Face Hub, cached at" in out and fake_hub == ["ACE-Step/Ace-Step1.5"]


def test_model_info_reads_a_local_folder_and_never_downloads_a_misspelt_one(fake_hub, tiny_checkpoint, tmp_path,
                                                                             capsys):
    shutil.copytree(tiny_checkpoint, tmp_path / "checkpoints" / "acestep-v15-turbo")
    assert main(["model", "info", "checkpoints/acestep-v15-turbo"]) == 0
    out = capsys.readouterr().out
    assert "local folder" in out and "downloading" not in out
    assert main(["model", "info", "checkpoints/acestep-v15-turbp"]) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "checkpoints/acestep-v15-turbo" in err
    assert fake_hub == []
