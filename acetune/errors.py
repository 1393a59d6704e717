"""Exceptions for problems the user can fix.

The CLI prints an `AcetuneError` without a traceback and exits with code 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

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
