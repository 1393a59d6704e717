"""`--adapter PATH[@STRENGTH]` as the commands that mix adapters take it (generate, merge)."""

from __future__ import annotations

from pathlib import Path

from acetune.cli.run_folders import missing_adapter_error


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

    for path, strength in adapters:
        if not path.exists():
            raise missing_adapter_error(path)
        checked_strength(strength, path)
