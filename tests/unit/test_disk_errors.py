"""A full disk, an exceeded quota, a read-only disk or a folder we may not write: one named error from the one
atomic writer, the previous file intact, no temporary file left; and the check that refuses such a place up front."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple

import pytest
from safetensors import SafetensorError

from acetune import atomic
from acetune.atomic import atomic_path, check_writable, write_folder_atomic, write_json_atomic, write_text_atomic
from acetune.errors import AcetuneError, CheckpointWriteError, ConfigError, DiskWriteError

Usage = namedtuple("Usage", "total used free")


def os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def raising(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


def test_a_full_disk_is_named_with_the_size_to_write_and_the_old_file_stays(tmp_path):
    target = tmp_path / "index.json"
    target.write_text("old")
    with pytest.raises(DiskWriteError) as caught:
        with atomic_path(target, size=300 * 2**20) as tmp:
            tmp.write_bytes(b"x" * 1000)
            raise os_error(errno.ENOSPC)
    text = str(caught.value)
    assert text.startswith(f"no space left on {tmp_path} while writing index.json (about 300.0 MiB to write, ")
    assert "fix: make at least 300.0 MiB free on that disk, or write to another disk; then run the command again" \
           in text
    assert caught.value.path == target and caught.value.code == errno.ENOSPC
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["index.json"]


def test_a_failed_rename_reports_what_was_written(tmp_path, monkeypatch):
    target = tmp_path / "song.json"
    target.write_text("old")
    monkeypatch.setattr(os, "replace", raising(os_error(errno.ENOSPC)))
    with pytest.raises(DiskWriteError, match=r"while writing song\.json \(2\.0 KiB written before it failed, "):
        write_text_atomic(target, "y" * 2048)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["song.json"]


def test_a_library_that_keeps_only_the_text_of_the_os_error(tmp_path):
    """safetensors raises its own error: "I/O error: No space left on device (os error 28)"."""
    target = tmp_path / "shard-00001.safetensors"
    with pytest.raises(DiskWriteError, match="no space left on") as caught:
        with atomic_path(target):
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert isinstance(caught.value.__cause__, SafetensorError) and os.listdir(tmp_path) == []


def test_a_library_that_lost_the_errno_on_a_nearly_full_disk(tmp_path, monkeypatch):
    """libsndfile says only "System error." when the disk fills; the free space tells what happened."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(2**30, 2**30 - 4096, 4096))
    with pytest.raises(DiskWriteError, match=r"no space left on .* while writing take\.wav \(4\.0 KiB free\)"):
        with atomic_path(tmp_path / "take.wav"):
            raise RuntimeError("System error.")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(2**40, 2**30, 2**39))
    with pytest.raises(RuntimeError, match="System error"):  # with room to spare it is not the disk
        with atomic_path(tmp_path / "take.wav"):
            raise RuntimeError("System error.")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("code, said, fix", [
    (errno.EROFS, "is on a read-only file system; cannot write a.toml", "choose an output folder on a writable disk"),
    (errno.EACCES, "no permission to write a.toml in", "choose a folder you can write to"),
    (errno.EPERM, "no permission to write a.toml in", "choose a folder you can write to"),
    (errno.EDQUOT, "disk quota exceeded on", "within your quota"),
])
def test_each_kind_of_refusal_says_what_to_do(tmp_path, monkeypatch, code, said, fix):
    monkeypatch.setattr(atomic.tempfile, "mkstemp", raising(os_error(code)))
    with pytest.raises(DiskWriteError) as caught:
        write_text_atomic(tmp_path / "a.toml", "x = 1\n")
    assert said in str(caught.value) and fix in caught.value.fix and os.listdir(tmp_path) == []


def test_other_failures_pass_through_unchanged(tmp_path):
    for error in (ValueError("a bug"), ConfigError("a named problem")):
        with pytest.raises(type(error)) as caught:
            with atomic_path(tmp_path / "x.json"):
                raise error
        assert caught.value is error
    assert os.listdir(tmp_path) == []


def test_a_folder_write_names_the_folder_not_the_hidden_file_that_failed(tmp_path, monkeypatch):
    """A checkpoint is a folder whose state.json is itself written atomically inside the staging folder."""
    target = tmp_path / "step_0000004"
    target.mkdir()
    (target / "state.json").write_text('{"step": 4}')
    real_replace = os.replace

    def replace(source, destination):
        if str(destination).endswith("state.json"):
            raise os_error(errno.ENOSPC)
        return real_replace(source, destination)

    def fill(staging):
        (staging / "adapter_model.safetensors").write_bytes(b"w" * 4096)
        write_json_atomic(staging / "state.json", {"step": 8})

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(DiskWriteError) as caught:
        write_folder_atomic(target, fill, overwrite=True)
    assert caught.value.path == target
    assert f"no space left on {tmp_path} while writing step_0000004 (4.0 KiB written before it failed" \
           in str(caught.value)
    assert (target / "state.json").read_text() == '{"step": 4}' and os.listdir(tmp_path) == ["step_0000004"]


def test_a_full_disk_found_by_fsync_leaves_the_old_folder(tmp_path, monkeypatch):
    """Delayed allocation: the bytes were accepted, the disk refuses them at fsync."""
    target = tmp_path / "final"
    target.mkdir()
    (target / "weights").write_text("old")
    monkeypatch.setattr(os, "fsync", raising(os_error(errno.ENOSPC)))
    with pytest.raises(DiskWriteError, match="while writing final"):
        write_folder_atomic(target, lambda staging: (staging / "weights").write_text("new"), overwrite=True)
    assert (target / "weights").read_text() == "old" and os.listdir(tmp_path) == ["final"]


def test_the_cli_prints_the_error_and_its_fix(tmp_path, capsys):
    from acetune.cli.app import print_error

    assert print_error(DiskWriteError(errno.ENOSPC, tmp_path / "cache" / "shard-00003.safetensors",
                                      size=256 * 2**20, free=12 * 2**20)) == 2
    err = capsys.readouterr().err
    assert f"error: no space left on {tmp_path / 'cache'} while writing shard-00003.safetensors (about 256.0 MiB " \
           "to write, 12.0 MiB free)" in err
    assert "fix: make at least 256.0 MiB free on that disk" in err


# -- check_writable: refuse before any work ------------------------------------------------------------------------


def test_a_writable_place_passes_and_keeps_nothing_of_the_probe(tmp_path):
    check_writable(tmp_path / "new" / "deeper")
    check_writable(tmp_path)
    assert os.listdir(tmp_path) == []


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointWriteError, match="the output path is a file, not a folder"):
        check_writable(tmp_path / "notes.txt")
    with pytest.raises(CheckpointWriteError, match="notes.txt is a file, so no folder can be made inside it"):
        check_writable(tmp_path / "notes.txt" / "run")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    """The tests run as root, whom permissions do not stop: os.access is made to answer as for a user."""
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: os.fspath(path) != os.fspath(tmp_path))
    with pytest.raises(DiskWriteError) as caught:
        check_writable(tmp_path / "run")
    assert caught.value.code == errno.EACCES and caught.value.path == tmp_path
    assert f"no permission to write into {tmp_path}" in str(caught.value)


def test_a_read_only_disk_is_named_as_such(tmp_path, monkeypatch):
    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: False)
    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(DiskWriteError, match=f"{tmp_path} is on a read-only file system"):
        check_writable(tmp_path)


def test_the_probe_catches_what_the_permissions_do_not_show(tmp_path, monkeypatch):
    """os.access says yes (root, an ACL, a share that maps root to nobody), the write itself says no."""
    monkeypatch.setattr(atomic.tempfile, "mkstemp", raising(PermissionError(errno.EACCES, "Permission denied")))
    with pytest.raises(DiskWriteError, match="no permission to write into"):
        check_writable(tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_check_folder_target_checks_the_folder_it_will_write_beside(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: False)
    with pytest.raises(DiskWriteError, match="no permission"):
        atomic.check_folder_target(tmp_path / "merged", overwrite=False)
    assert issubclass(DiskWriteError, CheckpointWriteError) and issubclass(DiskWriteError, AcetuneError)
