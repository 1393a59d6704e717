"""Preprocessing on a full disk, into an unwritable folder, or into a folder another preprocess is writing:
named errors, the cache as it was, no temporary files, and a rerun that completes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from safetensors import SafetensorError

import acetune.data.cache
import acetune.data.preprocess
from acetune.atomic import TEMP_GLOB
from acetune.audio import synthesize_song, write_audio
from acetune.cli.app import main
from acetune.data.cache import CacheReader, CacheWriter, read_index
from acetune.data.dataset import scan_dataset
from acetune.data.preprocess import preprocess
from acetune.errors import CheckpointWriteError, DiskWriteError, FolderLockedError
from acetune.events import Finished, Warned
from acetune.locks import LOCK_FILE, hold_folder

DISK_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors' own text


def write_song(folder: Path, seed: int) -> None:
    write_audio(folder / f"song{seed}.wav", synthesize_song(seed=seed, duration_s=2.0, bpm=120, key="C major"), 48000)
    (folder / f"song{seed}.json").write_text(json.dumps({"caption": f"song {seed}"}))


def build(songs: Path, bundle: Path, out: Path) -> list:
    return list(preprocess(scan_dataset(songs).dataset, bundle, out))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(TEMP_GLOB))


def test_a_full_disk_while_writing_a_shard_keeps_the_cache_and_a_rerun_completes(tiny_bundle, tmp_path, monkeypatch):
    songs, out = tmp_path / "songs", tmp_path / "cache"
    write_song(songs, 0)
    assert build(songs, tiny_bundle, out)[-1].summary["cached"] == 1
    index_before = (out / "index.json").read_text()
    write_song(songs, 1)

    def full_disk(*args, **kwargs):
        raise SafetensorError(DISK_FULL)

    monkeypatch.setattr(acetune.data.cache, "save_file", full_disk)
    with pytest.raises(DiskWriteError) as caught:
        build(songs, tiny_bundle, out)
    text = str(caught.value)
    assert f"no space left on {out} while writing shard-00001.safetensors (about " in text and " to write, " in text
    assert "fix: make at least " in text and "what was saved before is intact" in text
    assert (out / "index.json").read_text() == index_before and leftovers(out) == []
    assert not (out / LOCK_FILE).exists()  # the lock went with the failed run
    assert [e.id for e in CacheReader(out).entries] == ["song0.wav"] and CacheReader(out).load(0)
    monkeypatch.undo()
    finished = build(songs, tiny_bundle, out)[-1]
    assert finished.summary["cached"] == 2 and finished.summary["reused"] == 1


def test_a_full_disk_while_writing_the_index_keeps_the_old_index(tmp_path, monkeypatch, disk_full_at):
    import torch

    out = tmp_path / "cache"
    writer = CacheWriter(out, [])
    writer.add(acetune.data.cache.CacheEntry("a.wav", "", "h1", 4, 3), {"target_latents": torch.ones(4, 8)})
    writer.close()
    index_before = (out / "index.json").read_text()
    disk_full_at(lambda path: path.name == "index.json")
    writer = CacheWriter(out, read_index(out))
    writer.add(acetune.data.cache.CacheEntry("b.wav", "", "h2", 4, 3), {"target_latents": torch.ones(4, 8)})
    with pytest.raises(DiskWriteError, match=f"no space left on {out} while writing index.json"):
        writer.flush()
    assert (out / "index.json").read_text() == index_before and leftovers(out) == []
    monkeypatch.undo()
    writer = CacheWriter(out, read_index(out))  # the rerun: the unreferenced shard is replaced, nothing is lost
    writer.add(acetune.data.cache.CacheEntry("b.wav", "", "h2", 4, 3), {"target_latents": torch.ones(4, 8)})
    writer.close()
    assert [e.id for e in read_index(out)] == ["a.wav", "b.wav"] and len(list(out.glob("shard-*"))) == 2


def test_an_unwritable_cache_folder_is_refused_before_any_model_loads(tiny_bundle, tmp_path, monkeypatch, capsys):
    songs = tmp_path / "songs"
    write_song(songs, 0)

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr(acetune.data.preprocess, "resolve_bundle", must_not_load)
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: os.fspath(path) != os.fspath(tmp_path))
    code = main(["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tiny_bundle),
                 "--out", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and f"error: no permission to write into {tmp_path}" in err and "fix: choose a folder" in err
    assert not (tmp_path / "cache").exists()
    (tmp_path / "cache").write_text("a file")
    monkeypatch.undo()
    monkeypatch.setattr(acetune.data.preprocess, "resolve_bundle", must_not_load)
    with pytest.raises(CheckpointWriteError, match="the output path is a file, not a folder"):
        build(songs, tiny_bundle, tmp_path / "cache")


def test_a_second_preprocess_on_the_same_folder_is_refused_naming_the_first(tiny_bundle, tmp_path, monkeypatch,
                                                                            capsys):
    songs, out = tmp_path / "songs", tmp_path / "cache"
    write_song(songs, 0)
    with hold_folder(out, "acetune preprocess"):
        monkeypatch.setattr(acetune.data.preprocess, "resolve_bundle", lambda *a, **k: pytest.fail("loaded"))
        with pytest.raises(FolderLockedError, match=f"pid {os.getpid()} on .*acetune preprocess"):
            build(songs, tiny_bundle, out)
        code = main(["preprocess", "--audio-dir", str(songs), "--checkpoint-dir", str(tiny_bundle), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "another acetune process is writing into this folder" in err
        assert f"kill {os.getpid()}" in err
    assert not out.exists()  # the refused runs wrote nothing (and the holder's folder went with its lock)


def test_the_lock_is_held_while_running_released_when_done_or_closed_and_a_stale_one_taken_over(tiny_bundle,
                                                                                                tmp_path):
    songs, out = tmp_path / "songs", tmp_path / "cache"
    write_song(songs, 0)
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "acetune preprocess"}))
    events = preprocess(scan_dataset(songs).dataset, tiny_bundle, out)
    first = next(events)
    assert isinstance(first, Warned) and first.code == "stale-lock" and "pid 999999 on gone" in first.text
    with pytest.raises(FolderLockedError):  # held while the generator runs
        with hold_folder(out, "acetune preprocess"):
            pass
    assert isinstance(list(events)[-1], Finished) and not (out / LOCK_FILE).exists()
    events = preprocess(scan_dataset(songs).dataset, tiny_bundle, out)
    next(events)
    events.close()  # a front end that stops reading
    assert not (out / LOCK_FILE).exists()
    with hold_folder(out, "acetune preprocess") as lock:
        assert lock.took_over is None
