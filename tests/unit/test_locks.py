"""One acetune process per output folder: a second is refused naming the holder, a dead holder's lock is taken
over, and the lock goes when its holder is done, however it ends."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acetune import locks
from acetune.errors import DiskWriteError, FolderLockedError
from acetune.locks import LOCK_FILE, hold_folder

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from acetune.locks import hold_folder
with hold_folder(sys.argv[1], "acetune train"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_holder_in_this_process_is_refused_by_name(tmp_path):
    with hold_folder(tmp_path / "run", "acetune preprocess"):
        with pytest.raises(FolderLockedError) as caught:
            with hold_folder(tmp_path / "run", "acetune preprocess"):
                pass
    text = str(caught.value)
    assert f"another acetune process is writing into this folder: pid {os.getpid()} on " in text
    assert "(acetune preprocess, since " in text and f"kill {os.getpid()}" in caught.value.fix
    assert caught.value.path == tmp_path / "run"


def test_a_lock_held_by_another_process_is_refused_until_it_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid} on .* \\(acetune train, since "):
            with hold_folder(tmp_path, "acetune train"):
                pass
    finally:
        holder.communicate("go\n")
    assert holder.returncode == 0 and not (tmp_path / LOCK_FILE).exists()
    with hold_folder(tmp_path, "acetune train") as lock:
        assert lock.took_over is None


def test_a_killed_holder_leaves_a_lock_that_is_taken_over_and_reported(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: no cleanup runs, the file stays; the kernel drops the lock
    holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid
    with hold_folder(tmp_path, "acetune train") as lock:
        assert f"took over the lock left by pid {holder.pid} on " in lock.took_over
        assert lock.took_over.endswith("which no longer runs")
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_stale_lock_file_written_by_hand_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "elsewhere", "command": "acetune train"}))
    with hold_folder(tmp_path, "acetune train") as lock:
        assert "pid 999999 on elsewhere (acetune train)" in lock.took_over


def test_the_lock_goes_when_the_body_fails_and_a_folder_it_made_goes_if_empty(tmp_path):
    with pytest.raises(RuntimeError):
        with hold_folder(tmp_path / "new", "acetune train"):
            assert (tmp_path / "new" / LOCK_FILE).is_file()
            raise RuntimeError("setup failed")
    assert os.listdir(tmp_path) == []  # nothing was written: the folder it made is gone too
    with hold_folder(tmp_path / "kept", "acetune train"):
        (tmp_path / "kept" / "events.jsonl").write_text("{}\n")
    assert os.listdir(tmp_path / "kept") == ["events.jsonl"]
    with hold_folder(tmp_path, "acetune train"):
        pass
    assert tmp_path.is_dir()  # a folder that was there before stays, empty or not


def test_a_lock_file_replaced_between_open_and_lock_is_not_trusted(tmp_path, monkeypatch):
    """The holder deletes the file as it releases it; an opener that locked the deleted file opens the new one."""
    real_try_lock = locks._try_lock
    calls = []

    def released_meanwhile(handle):
        calls.append(handle)
        if len(calls) == 1:
            (tmp_path / LOCK_FILE).unlink()
        return real_try_lock(handle)

    monkeypatch.setattr(locks, "_try_lock", released_meanwhile)
    with hold_folder(tmp_path, "acetune train"):
        assert len(calls) == 2 and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_folder_that_cannot_be_written_is_a_named_error(tmp_path, monkeypatch):
    def refuse(path, flags, mode=0o777):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(DiskWriteError, match=f"no permission to write into {tmp_path / 'run'}"):
        with hold_folder(tmp_path / "run", "acetune train"):
            pass
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_acetune_imports_and_locks_where_there_is_no_fcntl(tmp_path):
    """Windows has no fcntl: the modules still import; without msvcrt either, folders are used unlocked."""
    code = ("import sys; sys.modules['fcntl'] = None; sys.modules['msvcrt'] = None\n"
            "import acetune.atomic, acetune.locks\n"
            "with acetune.locks.hold_folder(sys.argv[1], 'acetune train'): print('ran')\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and result.stdout == "ran\n", result.stderr
    assert "output folders are not locked" in result.stderr
