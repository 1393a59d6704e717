"""`--adapter PATH[@STRENGTH]` as the commands that mix adapters take it (generate, merge)."""

from __future__ import annotations

from pathlib import Path


def parse_adapter(spec: str) -> tuple[Path, float]:
    """`PATH` or `PATH@STRENGTH` (the strength defaults to 1.0)."""
    path, sep, tail = spec.rpartition("@")
    if sep:
        try:
            return Path(path), float(tail)
        except ValueError:
            pass  # an '@' that belongs to the path itself
    return Path(spec), 1.0


def check_adapters(adapters: list[tuple[Path, float]]) -> None:
    """Paths exist and strengths are sane, before seconds of model loading."""
    from acetune.adapters.patcher import checked_strength
    from acetune.errors import ModelLoadError

    for path, strength in adapters:
        if not path.exists():
            raise ModelLoadError("no such adapter file or folder", path=path,
                                 fix="point --adapter at a run's final/ or best/ folder, or an adapter file")
        checked_strength(strength, path)
