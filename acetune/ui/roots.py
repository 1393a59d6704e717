"""The folders the web app may read and write: every path a page names is resolved and checked against them.

A path is allowed only when its fully resolved form (symlinks followed, `..` collapsed) lies inside
one of the resolved roots, so neither `../..` nor a symlink inside a root that points out of it
reaches other files. The first root holds the app's own state (`.acetune-ui/`: job logs, the
configs it hands to child processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from acetune.errors import AcetuneError

STATE_FOLDER = ".acetune-ui"


class OutsideRootsError(AcetuneError):
    """A path a page named lies outside the folders the app was started with (`--root`), is missing or empty.

    `field` names the page's field the path came from, so the page shows the error beside it."""

    def __init__(self, what: str, *, path: Path | str | None = None, fix: str | None = None,
                 field: str | None = None):
        super().__init__(what, path=path, fix=fix)
        self.field = field


@dataclass(frozen=True)
class Roots:
    folders: tuple[Path, ...]

    @classmethod
    def of(cls, folders: list[Path | str]) -> Roots:
        """The roots resolved; one that is not an existing folder is refused, naming it."""
        resolved = []
        for folder in folders:
            path = Path(folder).expanduser().resolve()
            if not path.is_dir():
                raise AcetuneError("--root is not an existing folder", path=folder,
                                   fix="create the folder first, or pass another --root")
            if path not in resolved:
                resolved.append(path)
        if not resolved:
            raise AcetuneError("no --root folder given", fix="pass --root FOLDER (repeatable)")
        return cls(tuple(resolved))

    @property
    def state(self) -> Path:
        """The app's own folder (job logs and configs), inside the first root."""
        return self.folders[0] / STATE_FOLDER

    @classmethod
    def default(cls, roots: list[Path] | None, checkpoint_dir: Path | None) -> Roots:
        """`--root` folders (default: the current folder), and the checkpoints folder when one is given."""
        if checkpoint_dir is not None and not Path(checkpoint_dir).expanduser().is_dir():
            raise AcetuneError("--checkpoint-dir is not an existing folder", path=checkpoint_dir,
                               fix="pass the folder that holds the ACE-Step checkpoints (vae/, the DiT, ...)")
        return cls.of([*(roots or [Path.cwd()]), *([] if checkpoint_dir is None else [checkpoint_dir])])

    def check(self, path: Path | str, *, must_exist: bool = False, field: str | None = None) -> Path:
        """`path` resolved (relative paths are taken from the first root); outside every root it is refused.

        `field`: the page's field that holds the path, named by the error (see `acetune.ui.field_errors`)."""
        text = os.fspath(path).strip()
        if not text:
            raise OutsideRootsError("no path given", fix="type a folder inside " + self.shown(), field=field)
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = self.folders[0] / candidate
        resolved = candidate.resolve()
        if not any(resolved.is_relative_to(root) for root in self.folders):
            raise OutsideRootsError("is outside the folders this app may use", path=text,
                                    fix=f"choose a path inside {self.shown()}, or restart `acetune ui` with "
                                        "--root for that folder", field=field)
        if must_exist and not resolved.exists():
            raise OutsideRootsError("does not exist", path=text, fix="check the path", field=field)
        return resolved

    def shown(self) -> str:
        return ", ".join(str(root) for root in self.folders)
