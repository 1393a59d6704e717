"""What every auto-labeller gives the labelling run: its name, its settings and a proposal per song."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Proposal:
    """One labeller's checked values for one song, and a note per value it dropped."""

    values: dict[str, object] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Labeller(Protocol):
    kind: str  # "lm", "whisper": what --with names
    source: str  # written as the source of each value, e.g. "lm:acestep-5Hz-lm-1.7B"
    fields: tuple[str, ...]  # what it can propose
    settings: dict[str, Any]  # everything that changes its answers (model, decoding, ...)
    detail: str  # which model it loaded and why, in words

    def propose(self, audio_path: Path) -> Proposal:
        """Describe one song; raises an `AcetuneError` naming the song when it cannot."""
        ...


def settings_digest(source: str, settings: dict[str, Any]) -> str:
    """A short fingerprint of a labeller and its settings: a rerun with the same one skips a labelled song."""
    text = json.dumps({"source": source, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
