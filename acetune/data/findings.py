"""What a scan tells the user besides the songs: problems (a file it could not use) and notices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acetune.errors import echoed


@dataclass(frozen=True)
class Problem:
    """A file the scan could not use, and why (the scan goes on without it)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Notice:
    """Something worth knowing about a file the scan did use (a language read as unknown, a song without a
    caption, CSV columns kept as extra fields). Never a reason to drop a song."""

    path: Path
    text: str


def shown_caption(caption: str) -> str:
    """How a notice names the `# Caption` text a song trains on."""
    return f"the caption {echoed(caption)}" if caption else "an empty caption"
