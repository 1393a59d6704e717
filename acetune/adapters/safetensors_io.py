"""Reading and checking adapter safetensors files, with errors that name the file.

A truncated download or a file from another model must stop the load with the file's path and
what differs, never load half of it (LyCORIS and PEFT themselves load non-strictly).
"""

from __future__ import annotations

from pathlib import Path

import torch

from acetune.errors import ModelLoadError


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the header metadata of one safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"cannot read the adapter weights ({err})", path=path,
                             fix="copy the adapter folder again; the file is damaged or not safetensors") from err
    return tensors, metadata


def read_header(path: Path) -> tuple[list[str], dict[str, str]]:
    """The tensor names and header metadata of one safetensors file, without reading tensor data."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys()), dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"cannot read the adapter weights ({err})", path=path,
                             fix="copy the adapter folder again; the file is damaged or not safetensors") from err


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)


def rewrite_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Replace a file's header metadata, keeping its tensors byte for byte."""
    tensors, _ = read_safetensors(path)
    write_safetensors(tensors, path, metadata)


def require_same_tensors(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], path: Path) -> None:
    """Strict loading: the file holds exactly the expected tensor names with the expected shapes."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k]))
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shapes:
        key = shapes[0]
        parts.append(f"{len(shapes)} with other shapes (e.g. {key}: file {list(found[key])}, "
                     f"expected {list(expected[key])})")
    raise ModelLoadError("the weights do not match the adapter: " + ", ".join(parts), path=path,
                         fix="load the adapter into the model size it was trained on, from an intact folder")
