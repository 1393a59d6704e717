"""Writing one exported adapter file: the checks on the output path and the atomic write, shared by the exporters."""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.adapters.safetensors_io import write_safetensors
from acetune.atomic import atomic_path, check_writable
from acetune.errors import CheckpointWriteError, ConfigError


def check_output_file(out: Path, *, overwrite: bool, tool: str) -> None:
    """A `.safetensors` file path that is not a folder and, unless `overwrite`, does not exist yet."""
    if out.suffix != ".safetensors":
        raise ConfigError(f"the {tool} file must end in .safetensors", path=out)
    if out.is_dir():
        raise CheckpointWriteError("the output path is a folder", path=out, fix="name a .safetensors file")
    if out.exists() and not overwrite:
        raise CheckpointWriteError("the output file already exists", path=out,
                                   fix="choose another name, or pass --overwrite")
    check_writable(out.parent)  # a read-only disk or a folder without permission, before reading the adapter


def write_output_file(tensors: dict[str, torch.Tensor], out: Path, metadata: dict[str, str], *, tool: str) -> None:
    """Write into a temporary file beside `out` (its folder made if need be), then rename: a failed export leaves
    nothing half-written."""
    try:
        with atomic_path(out) as temp:  # makes the folder; a full or read-only disk is a DiskWriteError
            write_safetensors(tensors, temp, metadata)
    except OSError as err:
        raise CheckpointWriteError(f"cannot write the {tool} file ({err})", path=out) from err
