"""Atomic writes: a reader (or a crash) sees the old file or folder or the new one, never half of one.

One module below every layer, so model checkpoints, adapters, training checkpoints, caches and
sidecars all write the same careful way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acetune.errors import CheckpointWriteError

TEMP_GLOB = ".*.tmp-*"  # what a killed writer can leave behind


def write_json_atomic(path: Path, data: Any, *, indent: int = 2) -> None:
    """Write JSON (UTF-8, trailing newline) to a hidden temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=indent, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_folder_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a path that is a file, or a non-empty folder unless `overwrite` (call it before slow work)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise CheckpointWriteError("the output path is a file, not a folder", path=target, fix="choose a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise CheckpointWriteError("the output folder already exists and is not empty", path=target,
                                   fix="choose a new folder, or pass overwrite=True / --overwrite")


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
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _seal(folder: Path) -> None:
    """fsync every file, and give everything the user's usual permissions (mkdtemp makes 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    for item in folder.rglob("*"):
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
            os.chmod(item, 0o666 & ~mask)
        elif item.is_dir():
            os.chmod(item, 0o777 & ~mask)
    os.chmod(folder, 0o777 & ~mask)
