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

from acetune.atomic import write_folder_atomic, write_json_atomic
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


def find_latest(output_dir: Path) -> Path:
    found = list_checkpoints(output_dir)
    if not found:
        raise ResumeError("there is no complete checkpoint to resume", path=Path(output_dir) / CHECKPOINTS_DIR,
                          fix="start a new run (without --resume-from), or point --resume-from at a checkpoint")
    return found[-1][1]


def prune_checkpoints(output_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` complete checkpoints; returns what was removed."""
    found = list_checkpoints(output_dir)
    removed = [folder for _, folder in found[:-keep_last]] if keep_last > 0 else []
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def check_output_dir(output_dir: Path, resuming: bool) -> None:
    """A new run refuses a folder that already holds a run (nothing is overwritten silently)."""
    output_dir = Path(output_dir)
    if resuming or not output_dir.exists():
        return
    markers = [output_dir / CHECKPOINTS_DIR, output_dir / "final", output_dir / "events.jsonl"]
    if any(m.exists() for m in markers):
        raise CheckpointWriteError("the output folder holds another run", path=output_dir,
                                   fix="resume it with --resume-from latest, or choose another --out folder")
