"""Every writer on a full disk or into a folder it may not write: merged models, exports, generated takes and
their sidecars, label sidecars, the demo. A named error, the previous output intact, no temporary file, and
refusals before any model loads."""

from __future__ import annotations

import json
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors import SafetensorError

import acetune.adapters.comfyui
import acetune.audio.write
import acetune.generate
import acetune.model.convert
from acetune.adapters import attach, save_adapter
from acetune.adapters.comfyui import export_comfyui
from acetune.adapters.merge import merge_into_model
from acetune.cli.app import main
from acetune.config import AdapterConfig, AdapterKind
from acetune.errors import DiskWriteError
from acetune.generate import Track, write_takes
from acetune.model import build_tiny_model
from acetune.model.convert import convert_model
from acetune.model.sampling import SamplerSettings

DISK_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors' own text
Usage = namedtuple("Usage", "total used free")


def disk_full(*args, **kwargs):
    raise SafetensorError(DISK_FULL)


def only_writable_elsewhere(monkeypatch, folder: Path) -> None:
    """As for a user without write permission on `folder` (the tests run as root, whom permissions do not stop)."""
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: os.fspath(path) != os.fspath(folder))


def must_not_run(*args, **kwargs):
    raise AssertionError("slow work started before the refusal")


def hidden(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("adapter") / "lora"
    attached = attach(build_tiny_model("tiny", 0).decoder, AdapterConfig(kind=AdapterKind.LORA, rank=4, alpha=8.0),
                      seed=0)
    save_adapter(attached, folder)
    return folder


def test_a_full_disk_while_merging_keeps_the_previous_merged_model(tiny_checkpoint, adapter, tmp_path, monkeypatch):
    out = tmp_path / "merged"
    merge_into_model(tiny_checkpoint, [(adapter, 1.0)], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(DiskWriteError) as caught:
        merge_into_model(tiny_checkpoint, [(adapter, 0.5)], out, overwrite=True)
    assert caught.value.path == out and f"no space left on {tmp_path} while writing merged" in str(caught.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and hidden(tmp_path) == []


def test_merge_and_convert_refuse_an_unwritable_place_before_loading(tiny_checkpoint, adapter, tmp_path, monkeypatch):
    monkeypatch.setattr(acetune.model.convert, "load_model", must_not_run)
    only_writable_elsewhere(monkeypatch, tmp_path)
    with pytest.raises(DiskWriteError, match=f"no permission to write into {tmp_path}"):
        merge_into_model(tiny_checkpoint, [(adapter, 1.0)], tmp_path / "merged")
    with pytest.raises(DiskWriteError, match=f"no permission to write into {tmp_path}"):
        convert_model(tiny_checkpoint, tmp_path / "converted", format="official")
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_exporting_for_comfyui_keeps_the_previous_file(adapter, tmp_path, monkeypatch, capsys):
    out = tmp_path / "lora_comfyui.safetensors"
    export_comfyui(adapter, out)
    before = out.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    assert main(["export-comfyui", str(adapter), "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"error: no space left on {tmp_path} while writing lora_comfyui.safetensors" in err and "fix: " in err
    assert out.read_bytes() == before and os.listdir(tmp_path) == [out.name]


def test_exports_refuse_an_unwritable_folder_before_reading_the_adapter(adapter, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(acetune.adapters.comfyui, "read_adapter", must_not_run)
    only_writable_elsewhere(monkeypatch, tmp_path)
    assert main(["export-comfyui", str(adapter), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert main(["export-diffusers", str(adapter), "--out", str(tmp_path / "y.safetensors")]) == 2
    assert capsys.readouterr().err.count(f"error: no permission to write into {tmp_path}") == 2


def take(tmp_path: Path) -> tuple[Path, dict]:
    paths = [tmp_path / "idea_seed1.wav"]
    kwargs = dict(track=Track(caption="idea", duration_s=1.0), settings=SamplerSettings(),
                  extra={}, overwrite=True)
    write_takes(torch.zeros(1, 2, 4800), paths, [1], **kwargs)
    return paths[0], kwargs


def test_a_full_disk_while_writing_a_take_keeps_the_previous_take_and_sidecar(tmp_path, monkeypatch):
    """libsndfile reports a full disk only as "System error."; the free space says what happened."""
    path, kwargs = take(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def system_error(*args, **kwargs):
        raise RuntimeError("System error.")

    monkeypatch.setattr(acetune.audio.write, "_write_soundfile", system_error)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: Usage(2**30, 2**30 - 512, 512))
    with pytest.raises(DiskWriteError, match=r"no space left on .* while writing idea_seed1\.wav \(512 B free\)"):
        write_takes(torch.ones(1, 2, 4800) * 0.1, [path], [1], **kwargs)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_full_disk_while_writing_a_take_sidecar_keeps_the_previous_sidecar(tmp_path, disk_full_at):
    path, kwargs = take(tmp_path)
    sidecar = path.with_suffix(".json")
    before = sidecar.read_text()
    disk_full_at(lambda destination: destination.suffix == ".json")
    with pytest.raises(DiskWriteError, match=r"while writing idea_seed1\.json"):
        write_takes(torch.ones(1, 2, 4800) * 0.1, [path], [1], **kwargs)
    assert sidecar.read_text() == before and sorted(os.listdir(tmp_path)) == ["idea_seed1.json", "idea_seed1.wav"]


def test_generate_refuses_an_unwritable_out_before_loading_the_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(acetune.generate.Studio, "open", must_not_run)
    only_writable_elsewhere(monkeypatch, tmp_path)
    code = main(["generate", "--caption", "idea", "--checkpoint-dir", str(tmp_path / "ckpt"),
                 "--out", str(tmp_path / "takes")])
    assert code == 2 and f"error: no permission to write into {tmp_path}" in capsys.readouterr().err


def test_a_full_disk_while_editing_labels_keeps_the_sidecar(tmp_path, disk_full_at, capsys):
    songs = tmp_path / "songs"
    songs.mkdir()
    (songs / "a.wav").write_bytes(b"")
    (songs / "a.json").write_text(json.dumps({"caption": "mine"}))
    disk_full_at(lambda path: path.name == "a.json")
    assert main(["dataset", "edit", str(songs), "a.wav", "--bpm", "120"]) == 2
    err = capsys.readouterr().err
    assert f"error: no space left on {songs} while writing a.json" in err and "what was saved before is intact" in err
    assert json.loads((songs / "a.json").read_text()) == {"caption": "mine"}
    assert sorted(os.listdir(songs)) == ["a.json", "a.wav"]


def test_the_demo_refuses_an_unwritable_folder_before_it_starts(tmp_path, monkeypatch, capsys):
    only_writable_elsewhere(monkeypatch, tmp_path)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert f"error: no permission to write into {tmp_path}" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
