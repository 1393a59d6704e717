"""Adapters the app can offer: the runs under the roots and their checkpoints (final, best, step_N), with metadata.

Found by a shallow walk (a few levels, hidden folders and caches skipped), so a root that is a large
home folder is not crawled; the metadata comes from each file's header (no tensor data is read).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from acetune.errors import AcetuneError

MAX_DEPTH = 4  # root/runs/<run>/checkpoints/step_N
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
SHOWN = ("trigger_word", "variant", "base_model", "step", "recommended_steps", "recommended_shift")
HEADERS = ["adapter", "kind", "format", *SHOWN]


@dataclass(frozen=True)
class FoundAdapter:
    path: Path
    row: list[str]  # HEADERS


def find_adapters(roots: tuple[Path, ...]) -> list[FoundAdapter]:
    """Adapter folders (final/, best/, checkpoints/step_N/, or any folder holding PEFT adapter files)."""
    found = []
    for root in roots:
        for folder in _adapter_folders(root):
            found.append(FoundAdapter(folder, _row(folder, root)))
    return found


def _adapter_folders(root: Path) -> list[Path]:
    folders = []
    for current, dirs, files in os.walk(root):
        depth = len(Path(current).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("cache", "auditions", "logs"))
        if depth >= MAX_DEPTH:
            dirs[:] = []
        if any(name in files for name in ADAPTER_FILES):
            folders.append(Path(current))
            dirs[:] = []
    return folders


def _row(folder: Path, root: Path) -> list[str]:
    from acetune.adapters.formats import inspect_adapter

    shown = folder.relative_to(root).as_posix()
    try:
        header = inspect_adapter(folder)
    except AcetuneError as err:
        return [shown, "?", f"unreadable: {err.what}", *([""] * len(SHOWN))]
    return [shown, header.kind, header.format, *(header.metadata.get(key, "") for key in SHOWN)]
