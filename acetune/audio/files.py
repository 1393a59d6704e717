"""What a path in a song folder is, found without opening it, and how to open one safely.

Only regular files are ever read: opening a FIFO named `song.wav` would wait forever for a writer,
and a device file would never end. Links are followed; one that points nowhere or loops is named
as such, so the user learns which link to mend.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

# st_mode file types other than regular files and folders, as a user would call them
_SPECIAL_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def file_problem(path: Path | str) -> str | None:
    """Why `path` cannot be read as a file (a dangling or looping link, a folder, a FIFO, ...), or None.

    Uses `os.stat`, which follows links and never opens the file, so it cannot hang.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a link to a missing file ({os.readlink(path)}); never opened"
        return "file not found"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a link that loops (it leads back to itself); never opened"
        return f"cannot be examined ({err.strerror or err})"
    if stat.S_ISDIR(mode):
        return "a folder, not an audio file"
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "not a regular file")
        return f"{kind}, not a regular file; never opened"
    return None


def open_regular_file(path: Path | str) -> BinaryIO:
    """Open for reading, refusing anything but a regular file without blocking on it (no FIFO hang).

    O_NONBLOCK makes opening a FIFO return at once; the type is then checked on the open descriptor,
    so a file swapped for a FIFO after an earlier check is refused too. Raises OSError.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file; never read", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
