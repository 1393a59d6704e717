"""Exceptions for problems the user can fix.

The CLI prints an `AcetuneError` without a traceback and exits with code 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import math
import reprlib
from pathlib import Path


class AcetuneError(Exception):
    """A problem the user can fix: what went wrong, which file, and how to fix it."""

    def __init__(self, what: str, *, path: Path | str | None = None, fix: str | None = None):
        self.what = what
        self.path = None if path is None else Path(path)
        self.fix = fix
        text = what if path is None else f"{path}: {what}"
        super().__init__(text if fix is None else f"{text}\n  fix: {fix}")


class UsageError(AcetuneError):
    """A command line that cannot be parsed: an unknown command or option, a missing or malformed value."""


class ConfigError(AcetuneError):
    """A configuration file or value is malformed or impossible."""


class ModelLoadError(AcetuneError):
    """A checkpoint folder, weight file or Hub download cannot be used."""


class CheckpointWriteError(AcetuneError):
    """Saving would overwrite something the user made, or the target is unusable."""


class AudioError(AcetuneError):
    """An audio file cannot be decoded, is empty, or has an unusable format."""


class LabelError(AcetuneError):
    """A sidecar, CSV or dataset JSON is malformed or has values of the wrong type."""


class CacheError(AcetuneError):
    """A preprocessed cache is missing, corrupt or unusable."""


class CacheMismatchError(CacheError):
    """A cache was built by another checkpoint or with other preprocessing options."""


class ResumeError(AcetuneError):
    """A run cannot be resumed: no checkpoint, or one made with another config or adapter."""


class TrainingError(AcetuneError):
    """Training cannot start or go on (empty data, non-finite loss, impossible plan)."""


ECHO_CHARS = 80  # how much of a user's value an error message repeats
_ECHO_ITEMS = 6  # items shown of a list or table


def echoed(value: object, limit: int = ECHO_CHARS) -> str:
    """A user's value as an error message repeats it: its repr, cut to about `limit` characters.

    A 5 MB string or a long list in a label file is named by its start and its size, not printed in
    full. An integer too long for `repr` (Python refuses past 4300 digits) is named by its digit count.
    """
    text = _Echo(limit).repr(value)
    if len(text) > limit + 3:
        text = text[:limit] + "..."
    if isinstance(value, str) and len(value) > limit:
        text += f" ({len(value):,} characters)"
    elif isinstance(value, (list, tuple, dict)) and len(value) > _ECHO_ITEMS:
        text += f" ({len(value):,} items)"
    return text


class _Echo(reprlib.Repr):
    """The standard library's size-limited repr, with every limit set to one length."""

    def __init__(self, limit: int):
        super().__init__()
        self.maxstring = self.maxlong = self.maxother = limit
        self.maxlist = self.maxtuple = self.maxdict = _ECHO_ITEMS
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4 * self.maxlong:  # more digits than any limit: do not build the full text
            return f"<an integer of about {int(x.bit_length() * math.log10(2)) + 1:,} digits>"
        return super().repr_int(x, level)


def _size(n: int) -> str:
    """Bytes as a short human size: 262144 -> '256.0 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# errnos where more bytes would help (Windows has no EDQUOT), and where the place itself refuses writes
NO_SPACE = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
DISK_ERRNOS = NO_SPACE | NOT_WRITABLE


class DiskWriteError(CheckpointWriteError):
    """A write failed because of where it went: the disk is full or over quota, read-only, or not ours to write.

    Raised by `acetune.atomic` for every writer, so the previous file or folder is intact and no
    temporary file is left behind. `code` is the errno (ENOSPC, EDQUOT, EROFS, EACCES or EPERM);
    `into=True` when `target` is the folder written into (a check before work) rather than what was written.
    """

    def __init__(self, code: int, target: Path | str, *, into: bool = False, size: int | None = None,
                 written: int | None = None, free: int | None = None):
        target = Path(target)
        self.code, self.size, self.written, self.free = code, size, written, free
        place, name = (target, None) if into else (target.parent, target.name)
        writing = f" while writing {name}" if name else ""
        if code in NO_SPACE:
            quota = code != errno.ENOSPC
            what = (f"{'disk quota exceeded' if quota else 'no space left'} on {place}{writing}"
                    + _space_note(size, written, free))
            room = (f"make at least {_size(size)} free" if size else
                    f"make more than {_size(written)} free" if written else "free some space")
            fix = (f"{room} {'within your quota' if quota else 'on that disk'}, or write to another disk; then run "
                   "the command again (what was saved before is intact)")
        elif code == errno.EROFS:
            what = f"{place} is on a read-only file system" + (f"; cannot write {name}" if name else "")
            fix = "choose an output folder on a writable disk (or remount this one read-write)"
        else:
            what = f"no permission to write {name} in {place}" if name else f"no permission to write into {place}"
            fix = f"choose a folder you can write to, or change the permissions of {place}"
        super().__init__(what, fix=fix)
        self.path = target


def _space_note(size: int | None, written: int | None, free: int | None) -> str:
    parts = []
    if size:
        parts.append(f"about {_size(size)} to write")
    elif written:
        parts.append(f"{_size(written)} written before it failed")
    if free is not None:
        parts.append(f"{_size(free)} free")
    return f" ({', '.join(parts)})" if parts else ""


class FolderLockedError(AcetuneError):
    """Another acetune process is writing into this folder (see `acetune.locks`)."""
