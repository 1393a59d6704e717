"""Replacing best/, final/ or a checkpoint folder: a reader that looks at any moment finds the old folder or the
new one, complete, never neither (one exchanging rename where the system has it)."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
from pathlib import Path

import pytest

from acetune import atomic
from acetune.atomic import write_folder_atomic

needs_exchange = pytest.mark.skipif(atomic._exchange_call() is None, reason="no exchanging rename on this system")


def make_old(target: Path) -> None:
    target.mkdir()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (target / name).write_text("old")


def fill_new(staging: Path) -> None:
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        (staging / name).write_text("new")


def watch(monkeypatch, target: Path) -> list[str]:
    """Look at `target` before and after every rename, exchange and delete the writer makes."""
    seen: list[str] = []

    def look() -> None:
        files = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
        texts = {(target / name).read_text() for name in files}
        seen.append(texts.pop() if files == ["adapter_config.json", "adapter_model.safetensors"] and len(texts) == 1
                    else f"incomplete: {files}")

    def around(function):
        def wrapped(*args, **kwargs):
            look()
            result = function(*args, **kwargs)
            look()
            return result

        return wrapped

    monkeypatch.setattr(os, "rename", around(os.rename))
    monkeypatch.setattr(shutil, "rmtree", around(shutil.rmtree))
    monkeypatch.setattr(atomic, "_exchange", around(atomic._exchange))
    return seen


@needs_exchange
def test_a_reader_always_finds_a_complete_folder(tmp_path, monkeypatch):
    target = tmp_path / "best"
    make_old(target)
    seen = watch(monkeypatch, target)
    write_folder_atomic(target, fill_new, overwrite=True)
    assert seen[0] == "old" and seen[-1] == "new" and set(seen) == {"old", "new"}, seen
    assert os.listdir(tmp_path) == ["best"]


def test_without_an_exchanging_rename_a_reader_can_find_nothing(tmp_path, monkeypatch):
    """Why the exchange: the move-aside fallback (Windows, file systems without it) has a gap readers must retry."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "best"
    make_old(target)
    seen = watch(monkeypatch, target)
    write_folder_atomic(target, fill_new, overwrite=True)
    assert "incomplete: []" in seen and seen[-1] == "new"
    assert os.listdir(tmp_path) == ["best"]


def failing_exchange(code: int):
    """An exchanging rename that fails with `code`, as the C library reports it."""
    def call(a: bytes, b: bytes) -> int:
        ctypes.set_errno(code)
        return -1

    return lambda: call


def test_a_file_system_without_exchange_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange_call", failing_exchange(errno.EINVAL))
    target = tmp_path / "final"
    make_old(target)
    write_folder_atomic(target, fill_new, overwrite=True)
    assert (target / "adapter_model.safetensors").read_text() == "new" and os.listdir(tmp_path) == ["final"]


def test_an_exchange_refused_for_another_reason_is_an_error_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange_call", failing_exchange(errno.EBUSY))
    target = tmp_path / "final"
    make_old(target)
    with pytest.raises(OSError) as caught:
        write_folder_atomic(target, fill_new, overwrite=True)
    assert caught.value.errno == errno.EBUSY
    assert (target / "adapter_model.safetensors").read_text() == "old" and os.listdir(tmp_path) == ["final"]


def test_a_new_folder_is_renamed_into_place(tmp_path):
    write_folder_atomic(tmp_path / "final", fill_new, overwrite=False)
    assert (tmp_path / "final" / "adapter_config.json").read_text() == "new" and os.listdir(tmp_path) == ["final"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_linux_has_the_exchange():
    """glibc 2.28+ on Linux 3.15+: every supported Linux; if this fails, readers see the fallback's gap."""
    assert atomic._exchange_call() is not None
