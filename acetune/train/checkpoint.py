"""Run folders that never lose work: atomic checkpoints, keep-last-N, discovery by state.json.

    <output_dir>/checkpoints/step_0000400/   adapter files (flat, loadable as they are)
                                             state.safetensors + state.json (resumable state)
    <output_dir>/best/ and final/            adapter files only (inference-ready)

A checkpoint is written into a hidden staging folder and renamed into place; `state.json` is
written last, and a folder without it is not a checkpoint. The step comes from `state.json`,
never from a folder name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from acetune.atomic import TEMP_GLOB, write_folder_atomic, write_json_atomic
from acetune.errors import CheckpointWriteError, ResumeError

CHECKPOINTS_DIR = "checkpoints"
STATE_JSON = "state.json"
STATE_TENSORS = "state.safetensors"


def step_folder(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step:07d}"


def save_checkpoint(folder: Path, write_adapter: Callable[[Path], None], state: dict[str, Any],
                    tensors: dict[str, torch.Tensor]) -> Path:
    def fill(staging: Path) -> None:
        write_adapter(staging)
        save_file(tensors, str(staging / STATE_TENSORS), metadata={"format": "acetune-state"})
        write_json_atomic(staging / STATE_JSON, state)  # last: its presence marks a complete checkpoint

    return write_folder_atomic(folder, fill, overwrite=True)


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    folder = Path(folder)
    if not (folder / STATE_JSON).is_file():
        raise ResumeError("not a complete checkpoint (state.json is missing)", path=folder,
                          fix="resume from a folder under <output_dir>/checkpoints/, or pass --resume-from latest")
    try:
        state = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / STATE_TENSORS))
    except (json.JSONDecodeError, OSError, RuntimeError) as err:
        raise ResumeError(f"the checkpoint is unreadable ({type(err).__name__}: {err})", path=folder) from err
    return state, tensors


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint, oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = []
    for folder in root.glob("step_*") if root.is_dir() else []:
        state_file = folder / STATE_JSON
        if folder.is_dir() and state_file.is_file():
            try:
                found.append((int(json.loads(state_file.read_text(encoding="utf-8"))["step"]), folder))
            except (json.JSONDecodeError, KeyError, ValueError, TypeError):
                continue  # a damaged state.json is not a checkpoint we can resume
    return sorted(found)


def find_latest(output_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None when it has none yet."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def prune_checkpoints(output_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` complete checkpoints; returns what was removed."""
    found = list_checkpoints(output_dir)
    removed = [folder for _, folder in found[:-keep_last]] if keep_last > 0 else []
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def check_output_dir(output_dir: Path, resuming: bool) -> str | None:
    """Whether a run may start in `output_dir`; a note when it starts afresh over a run that saved nothing.

    A folder holding trained work is never written over: complete checkpoints are resumed (or the
    run is refused with that fix); a best/ or final/ adapter without a checkpoint to resume from
    must be moved away first. A folder whose run stopped before its first checkpoint holds nothing
    to resume, so a new run, or a resume, starts there afresh.
    """
    output_dir = Path(output_dir)
    if not output_dir.exists():
        return None
    found = list_checkpoints(output_dir)
    if found and not resuming:
        raise CheckpointWriteError(f"the output folder holds a run with checkpoints up to step {found[-1][0]}",
                                   path=output_dir, fix="resume it with --resume-from latest, or choose another --out "
                                                        "folder")
    adapters = [output_dir / name for name in ("final", "best") if (output_dir / name).exists()]
    if adapters and not found:
        raise CheckpointWriteError(f"{adapters[0].name}/ holds an adapter of a run that left no checkpoint to resume "
                                   "from, and a run here would replace it", path=adapters[0],
                                   fix=f"move {adapters[0]} elsewhere to keep it (it loads like any adapter), then run "
                                       "again; or choose another --out folder")
    leftovers = [p for p in (output_dir / "events.jsonl", output_dir / CHECKPOINTS_DIR) if p.exists()]
    if leftovers and not found:
        return (f"{output_dir} holds a run that stopped before its first checkpoint: nothing to resume, so it starts "
                "afresh there (events.jsonl goes on)")
    return None


def clean_stale_temps(output_dir: Path) -> list[Path]:
    """Remove the half-written staging files and folders a killed run left (never a complete checkpoint)."""
    removed = []
    for folder in (Path(output_dir), Path(output_dir) / CHECKPOINTS_DIR):
        for stale in folder.glob(TEMP_GLOB) if folder.is_dir() else []:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            removed.append(stale)
    return removed
