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

from acetune.errors import CacheError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


class MappedShard:
    def __init__(self, path: Path):
        self.path = Path(path)
        size = self.path.stat().st_size
        try:
            with open(self.path, "rb") as handle:
                header_len = int.from_bytes(handle.read(8), "little")
                if not 0 < header_len <= size - 8:
                    raise ValueError(f"header length {header_len} does not fit a {size}-byte file")
                header = json.loads(handle.read(header_len))
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise CacheError(f"not a readable safetensors shard ({err})", path=self.path,
                             fix="rebuild the cache with `acetune preprocess --rebuild`") from err
        self._base = 8 + header_len
        self._entries = {k: v for k, v in header.items() if k != "__metadata__"}
        last = max((v["data_offsets"][1] for v in self._entries.values()), default=0)
        if self._base + last > size:
            raise CacheError(f"shard is truncated: data ends at byte {self._base + last}, the file has {size}",
                             path=self.path, fix="rebuild the cache with `acetune preprocess --rebuild`")
        self._bytes = torch.from_file(str(self.path), shared=False, size=size, dtype=torch.uint8)

    def tensor(self, key: str) -> torch.Tensor:
        try:
            info = self._entries[key]
        except KeyError:
            raise CacheError(f"tensor {key!r} is not in this shard", path=self.path,
                             fix="rebuild the cache with `acetune preprocess --rebuild`") from None
        start, end = (self._base + offset for offset in info["data_offsets"])
        dtype = _DTYPES[info["dtype"]]
        raw = self._bytes[start:end]
        if start % dtype.itemsize:  # unaligned for a typed view: copy (never the case for our shards)
            raw = raw.clone()
        return raw.view(dtype).reshape(info["shape"])
