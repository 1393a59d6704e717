"""Where rendered audio goes: one file per seed plus a JSON sidecar that can reproduce it.

Every output path is checked before any rendering starts, so an existing file is never
overwritten silently and a refused run costs no compute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from acetune import __version__
from acetune.audio import TARGET_SAMPLE_RATE, write_audio
from acetune.config.validation import AUDIO_FORMATS
from acetune.atomic import check_writable, write_json_atomic
from acetune.errors import CheckpointWriteError, ConfigError
from acetune.generate.tracks import Track
from acetune.model.sampling import SamplerSettings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(text: str, limit: int = 48) -> str:
    """A file-name stem from free text ("Warm lo-fi piano!" -> "warm_lo-fi_piano")."""
    stem = _UNSAFE.sub("_", text.strip().lower()).strip("._")
    return stem[:limit].rstrip("._") or "take"


def take_paths(folder: Path, name: str, seeds: Sequence[int], audio_format: str) -> list[Path]:
    audio_format = audio_format.lower().lstrip(".")
    if audio_format not in AUDIO_FORMATS:
        raise ConfigError(f"audio format {audio_format!r} is not supported", fix=f"use one of {', '.join(AUDIO_FORMATS)}")
    return [Path(folder) / f"{name}_seed{seed}.{audio_format}" for seed in seeds]


def refuse_existing(paths: Sequence[Path], *, overwrite: bool) -> None:
    """Fail before rendering when an output (or its sidecar) exists and overwriting was not asked for, or
    when the output folder cannot be written."""
    for folder in sorted({Path(path).parent for path in paths}):
        check_writable(folder)
    if overwrite:
        return
    for path in paths:
        for candidate in (path, path.with_suffix(".json")):
            if candidate.exists():
                raise CheckpointWriteError("the output file already exists", path=candidate,
                                           fix="pass --overwrite, or choose another --out / --name")


def write_takes(waveforms: torch.Tensor, paths: Sequence[Path], seeds: Sequence[int], *, track: Track,
                settings: SamplerSettings, extra: dict[str, Any], overwrite: bool = False) -> list[Path]:
    """Write waveform i to paths[i] with a sidecar `<file>.json` (prompt, seed, sampler, adapters)."""
    for waveform, path, seed in zip(waveforms, paths, seeds, strict=True):
        write_audio(path, waveform.numpy(), TARGET_SAMPLE_RATE, overwrite=overwrite)
        sidecar = {"file": path.name, "seed": int(seed), "track": asdict(track), "prompt": track.prompt,
                   "lyric_text": track.lyric_text, "sampler": asdict(settings), "acetune_version": __version__,
                   **extra}
        write_json_atomic(path.with_suffix(".json"), sidecar)
    return list(paths)
