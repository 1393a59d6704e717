"""`--preset auto`: the built-in preset for the device's memory, adjusted so that it fits the cache's songs.

The choice is returned as overrides of lower precedence than the user's own flags, files and
`--set`, together with notes that say what was chosen and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from acetune.audio import LATENT_FRAMES_PER_SECOND
from acetune.config import auto_preset, detect_device_memory_gib, resolve_config
from acetune.data.cache import CacheReader

AUTO = "auto"


@dataclass(frozen=True)
class AutoChoice:
    preset: str
    overrides: list[str] = field(default_factory=list)  # `key=value`, to go before the user's own
    notes: list[str] = field(default_factory=list)


def choose_auto(device: str = "auto", cache: str | Path | None = None, memory_gib: float | None = None) -> AutoChoice:
    """The preset for `memory_gib` (default: the device's memory; none on a CPU), fitted to `cache`."""
    memory = memory_gib if memory_gib is not None else detect_device_memory_gib(device)
    preset = auto_preset(memory)
    where = f"{memory:.0f} GiB of device memory" if memory is not None else "no GPU memory to plan for"
    notes = [f"preset auto -> {preset} ({where})"]
    overrides: list[str] = []
    if cache:
        crop = resolve_config(preset=preset).data.crop_frames
        entries = CacheReader(cache).entries
        longest = max(entries, key=lambda entry: entry.latent_length, default=None)
        if longest is not None and crop > longest.latent_length:
            overrides.append("data.crop_frames=0")
            notes.append(f"the preset's {crop / LATENT_FRAMES_PER_SECOND:g} s crops are longer than every song "
                         f"(the longest, {longest.id}, is {longest.latent_length / LATENT_FRAMES_PER_SECOND:g} s): "
                         "training on whole songs (data.crop_frames = 0)")
    return AutoChoice(preset, overrides, notes)
