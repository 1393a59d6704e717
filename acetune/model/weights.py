"""Reading safetensors weight files: single file or sharded index, headers first, clear errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from acetune.errors import ConfigError, ModelLoadError

CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

_DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}


def parse_dtype(value: str | torch.dtype) -> torch.dtype:
    """fp32 / bf16 / fp16 (or their long names, or a torch dtype) -> torch dtype."""
    if isinstance(value, torch.dtype):
        if value in _DTYPES.values():
            return value
        raise ConfigError(f"dtype {value} is not supported; use fp32, bf16 or fp16")
    try:
        return _DTYPES[value.lower()]
    except KeyError:
        raise ConfigError(f"dtype {value!r} is not supported; use fp32, bf16 or fp16") from None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def short_dtype_name(dtype: torch.dtype) -> str:
    """fp32 / bf16 / fp16: the spelling configs and cache fingerprints use."""
    return next(name for name, value in _DTYPES.items() if value == dtype and len(name) == 4)


@dataclass
class WeightFiles:
    """Where each tensor of a checkpoint lives, with shapes and dtypes read from the headers only."""

    folder: Path
    files: list[Path]
    key_to_file: dict[str, Path] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    stored_names: dict[str, str] = field(default_factory=dict)  # key -> its name in the file, where they differ

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def find_weight_files(folder: Path, single_name: str = SINGLE_FILE) -> WeightFiles:
    """Locate `model.safetensors` (or `single_name`) or its sharded index and read every header (no tensor data)."""
    single, index = folder / single_name, folder / f"{single_name}.index.json"
    if index.is_file():
        files = _files_from_index(index)
    elif single.is_file():
        files = [single]
    else:
        raise ModelLoadError(f"no {single.name} or {index.name} in this folder", path=folder,
                             fix="point at an ACE-Step model folder such as checkpoints/acestep-v15-turbo")
    weights = WeightFiles(folder, files)
    for path in files:
        for key, (shape, dtype) in read_weight_header(path).items():
            if key in weights.key_to_file:
                raise ModelLoadError(f"tensor {key!r} appears in two shards "
                                     f"({weights.key_to_file[key].name} and {path.name})", path=folder)
            weights.key_to_file[key], weights.shapes[key], weights.dtypes[key] = path, shape, dtype
    return weights


def _files_from_index(index: Path) -> list[Path]:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        weight_map = data["weight_map"]
        names = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ModelLoadError(f"malformed shard index ({type(err).__name__}: {err}); expected a JSON object "
                             "with a 'weight_map' of tensor name -> shard file", path=index) from err
    files = [index.parent / name for name in names]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ModelLoadError(f"the shard index names files that are not there: {', '.join(missing[:5])}", path=index,
                             fix="download the missing shards again")
    return files


def read_weight_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape and dtype of every tensor in a safetensors file, from its header. safetensors checks that the
    header parses and that the data it describes fills the file exactly, so a truncated or garbled
    download is found here, in milliseconds, before anything compares or loads it."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            out = {}
            for key in handle.keys():
                sl = handle.get_slice(key)
                out[key] = (tuple(sl.get_shape()), sl.get_dtype())
            return out
    except (SafetensorError, OSError) as err:
        raise damaged_file(path, err) from err


def damaged_file(path: Path, err: Exception) -> ModelLoadError:
    """The error for a model weight file that cannot be read: it names the file and says to fetch it again."""
    return ModelLoadError(f"the model file {path.name} is damaged (truncated or corrupt: {err})", path=path,
                          fix=f"download {path.name} again (or the whole model folder)")


def read_tensors(weights: WeightFiles, keys: list[str], dtype: torch.dtype, device: str | torch.device) -> dict[str, torch.Tensor]:
    """Read the named tensors, cast to `dtype`, placed on `device`."""
    by_file: dict[Path, list[str]] = {}
    for key in keys:
        by_file.setdefault(weights.key_to_file[key], []).append(key)
    out: dict[str, torch.Tensor] = {}
    for path, file_keys in by_file.items():
        try:
            with safe_open(str(path), framework="pt", device=str(device)) as handle:
                for key in file_keys:
                    tensor = handle.get_tensor(weights.stored_names.get(key, key))
                    if not tensor.is_floating_point():
                        raise ModelLoadError(f"tensor {key!r} has dtype {tensor.dtype}; model weights must be "
                                             "floating point", path=path)
                    out[key] = tensor.to(dtype)
        except (SafetensorError, OSError) as err:
            raise damaged_file(path, err) from err
    return out
