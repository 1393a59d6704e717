"""Find the 5 Hz LM folders in a checkpoints folder and pick the one to load.

Upstream layout (shared spec model.md §1): `acestep-5Hz-lm-0.6B/`, `acestep-5Hz-lm-1.7B/` (in the main
bundle) and `acestep-5Hz-lm-4B/` beside the DiT folders. A folder counts when it holds `config.json`.
Without `--lm`, the largest variant whose estimated memory fits the device is chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.errors import ModelLoadError

LM_PREFIX = "acestep-5Hz-lm-"
# Loading needs the weights plus activations, the KV cache of a prompt of a few thousand tokens and the
# allocator's slack: 1.3x the weights covers that for a 4-minute song (1200 codes) with room to spare.
MEMORY_FACTOR = 1.3


@dataclass(frozen=True)
class LmChoice:
    folder: Path
    weight_bytes: int  # on disk
    need_bytes: int  # estimated memory to run it in the chosen dtype
    free_bytes: int | None  # what the device has free (None: unknown)
    reason: str  # why this one, in words

    @property
    def name(self) -> str:
        return self.folder.name


def lm_folders(checkpoint_dir: Path) -> list[Path]:
    """The LM folders under `checkpoint_dir` (or the folder itself when it is one), smallest first."""
    root = Path(checkpoint_dir).expanduser()
    if not root.is_dir():
        raise ModelLoadError("checkpoint folder not found", path=root,
                             fix="pass the ACE-Step checkpoints folder (holding acestep-5Hz-lm-1.7B/)")
    if root.name.startswith(LM_PREFIX) and (root / "config.json").is_file():
        return [root]
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(LM_PREFIX) and (p / "config.json").is_file()]
    return sorted(found, key=weight_bytes)


def weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def free_memory(device: torch.device) -> int | None:
    """Free bytes on the device: CUDA's own count, or the system's available memory for the CPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def choose_lm(checkpoint_dir: Path, variant: str | None, device: torch.device, dtype: torch.dtype) -> LmChoice:
    """The LM to load: `variant` by name ("1.7B" or the folder name), else the largest that fits."""
    folders = lm_folders(checkpoint_dir)
    if not folders:
        raise ModelLoadError(f"no 5 Hz LM here: no {LM_PREFIX}*/ folder with config.json", path=checkpoint_dir,
                             fix="download ACE-Step/Ace-Step1.5 (it holds acestep-5Hz-lm-1.7B/) into this folder, "
                                 "or pass the folder that holds it")
    free = free_memory(device)
    scale = torch.finfo(dtype).bits / 16  # the released weights are bf16
    sized = [(f, weight_bytes(f), int(weight_bytes(f) * scale * MEMORY_FACTOR)) for f in folders]
    if variant:
        wanted = {variant, f"{LM_PREFIX}{variant}"}
        picked = [s for s in sized if s[0].name in wanted]
        if not picked:
            raise ModelLoadError(f"no LM folder {variant!r} (found: {', '.join(f.name for f in folders)})",
                                 path=checkpoint_dir, fix="pass --lm with one of the listed names, or leave it out")
        return LmChoice(*picked[0], free, "chosen by --lm")
    fitting = [s for s in sized if free is None or s[2] <= free]
    if fitting:
        return LmChoice(*fitting[-1], free, "the largest that fits" if free is not None else "the largest found")
    return LmChoice(*sized[0], free, "the smallest: none fits the free memory, it may not load")
