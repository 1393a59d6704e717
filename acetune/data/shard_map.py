"""Zero-copy reads of a safetensors shard: the file is memory-mapped once, tensors are views into it.

safetensors' own `get_tensor` copies every tensor out of its mapping; a training loader that
touches each sample once per epoch gains nothing from that copy. The mapping is private
(copy-on-write), so writing to a returned tensor never changes the file. The format is the
public safetensors layout: 8-byte little-endian header length, JSON header, raw data.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from acetune.errors import CacheError

REBUILD_FIX = "rebuild the cache with `acetune preprocess --rebuild`"

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


class MappedShard:
    def __init__(self, path: Path):
        self.path = Path(path)
        _check_header(self.path)
        size = self.path.stat().st_size
        with open(self.path, "rb") as handle:  # a header safetensors accepted: parsed again for the offsets
            header_len = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_len))
        self._base = 8 + header_len
        self._entries = {k: v for k, v in header.items() if k != "__metadata__"}
        self._bytes = torch.from_file(str(self.path), shared=False, size=size, dtype=torch.uint8)

    def tensor(self, key: str) -> torch.Tensor:
        try:
            info = self._entries[key]
        except KeyError:
            raise CacheError(f"tensor {key!r} is not in this shard", path=self.path, fix=REBUILD_FIX) from None
        start, end = (self._base + offset for offset in info["data_offsets"])
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise CacheError(f"tensor {key!r} has dtype {info['dtype']}, which acetune never writes", path=self.path,
                             fix=REBUILD_FIX)
        raw = self._bytes[start:end]
        if start % dtype.itemsize:  # unaligned for a typed view: copy (never the case for our shards)
            raw = raw.clone()
        return raw.view(dtype).reshape(info["shape"])


def _check_header(path: Path) -> None:
    """safetensors' own parser checks the header: valid JSON, known dtypes, offsets that are in order, match
    each shape and cover the file exactly. Any failure (a garbled or truncated shard) is a named error."""
    try:
        with safe_open(str(path), framework="pt"):
            pass
    except (SafetensorError, OSError) as err:
        raise CacheError(f"shard {path.name} is damaged: its safetensors header does not parse or does not match "
                         f"the file ({err})", path=path, fix=REBUILD_FIX) from err
