"""Atomic writes: a reader (or a crash) sees the old file or folder or the new one, never half of one.

One module below every layer, so model checkpoints, adapters, training checkpoints, caches and
sidecars all write the same careful way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acetune.errors import CheckpointWriteError

TEMP_GLOB = ".*.tmp-*"  # what a killed writer can leave behind


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temp path beside `path` to write; on success fsync it, give it the user's usual
    permissions and rename it over `path`. On failure the temp file is removed and `path` is untouched.

    The temp name matches `TEMP_GLOB`, so a writer killed mid-write leaves something cleanable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text with LF newlines, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def write_json_atomic(path: Path, data: Any, *, indent: int = 2) -> None:
    """JSON (UTF-8, trailing newline), atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def check_folder_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a path that is a file, or a non-empty folder unless `overwrite` (call it before slow work)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise CheckpointWriteError("the output path is a file, not a folder", path=target, fix="choose a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise CheckpointWriteError("the output folder already exists and is not empty", path=target,
                                   fix="choose a new folder, or pass --overwrite")


def write_folder_atomic(target: Path, fill: Callable[[Path], None], *, overwrite: bool) -> Path:
    """Build `target` with `fill(staging)` in a hidden sibling folder, fsync it, then rename it into place.

    An existing non-empty folder is refused unless `overwrite`; then it is moved aside, and deleted
    only after the new folder is in place, so a crash at any point leaves one complete folder.
    """
    target = Path(target)
    check_folder_target(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(staging)
        _seal(staging)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.rename(old / target.name)
        try:
            staging.rename(target)
        except OSError:
            if old is not None:  # put the previous folder back rather than leave nothing
                (old / target.name).rename(target)
                shutil.rmtree(old)
            raise
        if old is not None:
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


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
