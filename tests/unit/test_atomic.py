"""Atomic writes: readable files with the user's permissions, nothing half-written, nothing lost."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from acetune import atomic
from acetune.atomic import atomic_path, write_folder_atomic, write_json_atomic, write_text_atomic
from acetune.audio import write_audio


@pytest.fixture()
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_file_writer_respects_the_umask(tmp_path, umask_022):
    write_text_atomic(tmp_path / "a.toml", "x = 1\n")
    write_json_atomic(tmp_path / "b.json", {"x": 1})
    write_audio(tmp_path / "c.wav", np.zeros((2, 4800), dtype=np.float32), 48000)
    write_audio(tmp_path / "d.m4a", np.zeros((2, 4800), dtype=np.float32), 48000)
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {name: 0o644 for name in
                                                              ("a.toml", "b.json", "c.wav", "d.m4a")}


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "index.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_a_failed_folder_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    """The move-aside fallback (no exchanging rename on this system): a failed second rename restores the old."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "final"
    target.mkdir()
    (target / "weights").write_text("old")
    real_rename = type(target).rename

    def rename(self, other):
        if self.name.startswith(".final.tmp-"):
            raise OSError("disk went away")
        return real_rename(self, other)

    monkeypatch.setattr(type(target), "rename", rename)
    with pytest.raises(OSError, match="disk went away"):
        write_folder_atomic(target, lambda staging: (staging / "weights").write_text("new"), overwrite=True)
    assert (target / "weights").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["final"]
