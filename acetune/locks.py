"""One acetune process per output folder: an advisory lock held for the writer's whole life.

    with hold_folder(out, "acetune preprocess") as lock:
        ...                      # lock.took_over: who left a stale lock, if anyone

The lock is `<folder>/.acetune.lock`, holding the holder's pid, host, command and start time, and
locked with `flock` (POSIX) or `msvcrt.locking` (Windows). The kernel drops the lock when its
holder dies, however it dies, so a lock file left by a killed process is simply locked again (and
reported); a second live process is refused with a `FolderLockedError` naming the holder. The
file is deleted on release; a holder checks, once locked, that the file it locked is still the one
at the path, so a file deleted under a waiting opener is never mistaken for the lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from acetune.errors import DISK_ERRNOS, DiskWriteError, FolderLockedError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_FILE = ".acetune.lock"
_WINDOWS_LOCK_OFFSET = 1 << 20  # msvcrt locks a byte range that others cannot read: lock one far past the text
_ATTEMPTS = 20  # re-opens when the lock file was replaced between our open and our lock (a release raced us)


@dataclass(frozen=True)
class FolderLock:
    """A held lock: its file, and a sentence naming who left the stale lock taken over (None if none was)."""

    path: Path
    took_over: str | None = None


@contextmanager
def hold_folder(folder: Path, command: str) -> Iterator[FolderLock]:
    """Hold `folder`'s lock for the body (the folder is made if need be, and removed again if still empty).

    Raises `FolderLockedError` when another process holds it, naming that process.
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_FILE
        handle, previous = _acquire(path, command)
    except OSError as err:
        _remove_if_empty(folder, created)
        if err.errno in DISK_ERRNOS:
            raise DiskWriteError(err.errno, folder, into=True) from err
        raise
    except BaseException:
        _remove_if_empty(folder, created)
        raise
    took_over = None
    if previous is not None:
        took_over = f"{folder}: took over the lock left by {_describe(previous)}, which no longer runs"
        logger.info("%s", took_over)
    try:
        yield FolderLock(path, took_over)
    finally:
        _release(handle, path)
        _remove_if_empty(folder, created)


def _acquire(path: Path, command: str) -> tuple[int, dict | None]:
    """Open and lock `path`; returns the handle and what a dead holder left in it (None when nothing)."""
    for _ in range(_ATTEMPTS):
        handle = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)  # (Windows: no \r\n)
        try:
            locked = _try_lock(handle)
            if locked and _still_at(handle, path):
                previous = _read(handle)
                _write(handle, {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                                "started": time.strftime("%Y-%m-%d %H:%M:%S")})
                return handle, previous
            holder = None if locked else _read(handle)
        except BaseException:
            os.close(handle)
            raise
        os.close(handle)
        if not locked:
            raise FolderLockedError(f"another acetune process is writing into this folder: {_describe(holder)}",
                                    path=path.parent, fix=_fix(holder))
        # else its holder deleted the file between our open and our lock: open the new one
    raise FolderLockedError("the lock file keeps being replaced by other processes", path=path.parent,
                            fix="make sure only one acetune command writes into this folder")


def _release(handle: int, path: Path) -> None:
    if fcntl is not None:  # delete while still locked: whoever opens the file later finds it gone and re-opens
        path.unlink(missing_ok=True)
        os.close(handle)
        return
    if msvcrt is not None:
        os.lseek(handle, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)
    os.close(handle)
    try:  # Windows cannot delete an open file: a process that opened it since keeps it, which is right
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _try_lock(handle: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is not None:
        os.lseek(handle, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    logger.warning("this system has neither fcntl nor msvcrt: output folders are not locked")  # pragma: no cover
    return True  # pragma: no cover


def _still_at(handle: int, path: Path) -> bool:
    try:
        here = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(handle)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


def _read(handle: int) -> dict | None:
    os.lseek(handle, 0, os.SEEK_SET)
    text = os.read(handle, 4096).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {"text": text}
    return data if isinstance(data, dict) else {"text": text}


def _write(handle: int, data: dict) -> None:
    payload = (json.dumps(data) + "\n").encode("utf-8")
    os.lseek(handle, 0, os.SEEK_SET)
    os.write(handle, payload)
    os.ftruncate(handle, len(payload))


def _describe(holder: dict | None) -> str:
    if not holder:
        return "a process that is just starting (it has not written its details yet)"
    if "pid" not in holder:
        return f"an unknown process ({holder.get('text', '')!r})"
    where = f" on {holder['host']}" if holder.get("host") else ""
    what = [str(holder["command"])] if holder.get("command") else []
    what += [f"since {holder['started']}"] if holder.get("started") else []
    return f"pid {holder['pid']}{where}" + (f" ({', '.join(what)})" if what else "")


def _fix(holder: dict | None) -> str:
    stop = f"stop it (`kill {holder['pid']}` on {holder.get('host', 'its host')})" if holder and "pid" in holder \
        else "stop it"
    return f"wait for it to finish or {stop}, or choose another output folder"


def _remove_if_empty(folder: Path, created: bool) -> None:
    if created:
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: something was written, and it stays


__all__ = ["LOCK_FILE", "FolderLock", "hold_folder"]
