"""Atomic writes: a reader (or a crash) sees the old file or folder or the new one, never half of one.

One module below every layer, so model checkpoints, adapters, training checkpoints, caches,
exports, audio and sidecars all write the same careful way, and fail the same way: a full disk,
an exceeded quota, a read-only disk or a folder we may not write is a `DiskWriteError` naming the
path and what to do, with the previous file or folder intact and no temporary file left behind.
`check_writable` refuses such a place before any slow work starts.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acetune.errors import DISK_ERRNOS, NO_SPACE, AcetuneError, CheckpointWriteError, DiskWriteError

TEMP_GLOB = ".*.tmp-*"  # what a killed writer can leave behind
PROBE_PREFIX = ".acetune-probe-"
# A write that failed (OSError, or a library's RuntimeError that lost the errno, as libsndfile's "System
# error") while less than this is free on its disk ran out of space, whatever the message says.
LOW_SPACE_BYTES = 1 << 20


@contextmanager
def atomic_path(path: Path, *, size: int | None = None) -> Iterator[Path]:
    """Yield a hidden temp path beside `path` to write; on success fsync it, give it the user's usual
    permissions and rename it over `path`. On failure the temp file is removed and `path` is untouched.

    The temp name matches `TEMP_GLOB`, so a writer killed mid-write leaves something cleanable.
    A failure caused by the disk or the folder (see `DiskWriteError`) is raised as one; `size`, the
    bytes about to be written when the caller knows them, goes into its message.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
        os.close(handle)
        tmp = Path(name)
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except Exception as err:
        named = disk_error(err, path, size=size, written=_bytes_in(tmp))
        if named is None:
            raise
        raise named from err
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text with LF newlines, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def write_json_atomic(path: Path, data: Any, *, indent: int = 2) -> None:
    """JSON (UTF-8, trailing newline), atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def check_writable(folder: Path) -> None:
    """Refuse a folder acetune could not write into or create, before any slow work: a path through a file,
    a read-only disk, a folder without write permission.

    Walks up to the first existing folder (where a missing one would be made). `os.access` reads the
    permissions; a probe file then catches what they do not show (an ACL, a network share that maps
    root to nobody), since root passes every permission check.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = ("the output path is a file, not a folder" if existing == folder
                else f"{existing} is a file, so no folder can be made inside it")
        raise CheckpointWriteError(what, path=folder, fix="choose a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DiskWriteError(errno.EROFS if _read_only(existing) else errno.EACCES, existing, into=True)
    try:
        handle, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=existing)
        os.close(handle)
        os.unlink(name)
    except OSError as err:
        if err.errno not in DISK_ERRNOS:
            raise
        raise DiskWriteError(err.errno, existing, into=True) from err


def check_folder_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a path that is a file, a non-empty folder unless `overwrite`, or a place we cannot write
    (call it before slow work)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise CheckpointWriteError("the output path is a file, not a folder", path=target, fix="choose a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise CheckpointWriteError("the output folder already exists and is not empty", path=target,
                                   fix="choose a new folder, or pass --overwrite")
    check_writable(target.parent)  # the folder is built beside itself and renamed into place


def write_folder_atomic(target: Path, fill: Callable[[Path], None], *, overwrite: bool,
                        size: int | None = None) -> Path:
    """Build `target` with `fill(staging)` in a hidden sibling folder, fsync it, then swap it into place.

    An existing non-empty folder is refused unless `overwrite`. Where the system can (Linux, macOS)
    the new folder and the old one trade places in one step, so a reader always finds a complete
    `target`; elsewhere the old one is moved aside first (see `_move_aside`). The old folder is
    deleted only once the new one is in place, so a crash at any point leaves one complete folder.
    Failures from the disk are raised as `DiskWriteError` naming `target` (`size`: bytes to write, if known).
    """
    target = Path(target)
    check_folder_target(target, overwrite=overwrite)
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        fill(staging)
        _seal(staging)
        if not target.exists():
            staging.rename(target)
        elif not _exchange(staging, target):  # after an exchange `staging` holds the old folder, deleted below
            _move_aside(staging, target)
    except Exception as err:
        named = disk_error(err, target, size=size, written=_bytes_in(staging))
        if named is None:
            raise
        raise named from err
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging)
    return target


@contextmanager
def named_disk_errors(target: Path) -> Iterator[None]:
    """For a file written in place (an append-only log): a failure the disk or the folder caused is raised as
    a `DiskWriteError` naming `target`."""
    try:
        yield
    except Exception as err:
        named = disk_error(err, Path(target))
        if named is None:
            raise
        raise named from err


def disk_error(err: BaseException, target: Path, *, size: int | None = None,
               written: int | None = None) -> DiskWriteError | None:
    """`err` as a `DiskWriteError` about `target` when the disk or the folder caused it, else None.

    The errno is found on the exception or its causes, or in its text where a library kept only that
    (safetensors: "No space left on device (os error 28)"); a write that failed on a nearly full disk
    is taken for a full disk (libsndfile says only "System error"). One from a nested write (a file
    inside a folder being built) is renamed after the outer target.
    """
    if isinstance(err, DiskWriteError):
        code = err.code
    elif isinstance(err, AcetuneError):
        return None  # already says what is wrong
    else:
        code = _errno_in(err)
        if code is None and isinstance(err, (OSError, RuntimeError)):
            free = _free_bytes(target.parent)
            code = errno.ENOSPC if free is not None and free < LOW_SPACE_BYTES else None
    if code is None:
        return None
    free = _free_bytes(target.parent) if code in NO_SPACE else None
    return DiskWriteError(code, target, size=size, written=written or None, free=free)


def _errno_in(err: BaseException) -> int | None:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_ERRNOS:
            return current.errno
        text = str(current)
        for code in DISK_ERRNOS:
            if os.strerror(code) in text:
                return code
        current = current.__cause__ or current.__context__
    return None


def _move_aside(staging: Path, target: Path) -> None:
    """The fallback swap: move the old folder aside, rename the new one in, delete the old one.

    Between the two renames `target` is briefly missing: a reader must retry. If the second rename
    fails the old folder is put back rather than leave nothing.
    """
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    target.rename(old / target.name)
    try:
        staging.rename(target)
    except OSError:
        (old / target.name).rename(target)
        shutil.rmtree(old)
        raise
    shutil.rmtree(old)


_AT_FDCWD = -100  # linux/fcntl.h: paths relative to the working folder
_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS sys/stdio.h, for renamex_np


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the system or the file system cannot (then nothing moved)."""
    call = _exchange_call()
    if call is None:
        return False
    if call(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # e.g. a file system without exchange support (some network and FUSE ones)
    raise OSError(code, os.strerror(code), str(b))


@functools.cache
def _exchange_call() -> Callable[[bytes, bytes], int] | None:
    """The C library's exchanging rename: renameat2 (glibc 2.28+, Linux 3.15+) or renamex_np (macOS 10.12+)."""
    if sys.platform.startswith("linux"):
        function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
        if function is None:
            return None
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        return lambda a, b: function(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE)
    if sys.platform == "darwin":
        function = getattr(ctypes.CDLL(None, use_errno=True), "renamex_np", None)
        if function is None:
            return None
        function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        return lambda a, b: function(a, b, _RENAME_SWAP)
    return None  # Windows: no exchanging rename


def _bytes_in(path: Path | None) -> int:
    """Bytes written so far into a temp file or staging folder (0 if there is none)."""
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _free_bytes(folder: Path) -> int | None:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # Windows has no statvfs
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _seal(folder: Path) -> None:
    """fsync every file, and give everything the user's usual permissions (mkdtemp makes 0700)."""
    mask = _umask()
    for item in folder.rglob("*"):
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(item, 0o666 & ~mask)
        elif item.is_dir():
            os.chmod(item, 0o777 & ~mask)
    os.chmod(folder, 0o777 & ~mask)
