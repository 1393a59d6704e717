"""The preprocessed cache: safetensors shards + a JSON index, written crash-safely, read memory-mapped.

Layout of a cache folder:

    fingerprint.json            what made the cache (see fingerprint.py)
    index.json                  format version + one entry per sample (shard, lengths, hashes, labels)
    shard-00000.safetensors     tensors "<sample id>::<name>", e.g. "songs/a.flac::target_latents"

Shards are immutable once written: each is written to a temporary name and renamed, and only
then does the index (itself replaced atomically) reference it. A run killed at any moment
therefore leaves a readable cache whose index names only complete shards; stray temporary
files are removed on the next open for writing. Shards no entry references are deleted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from acetune.atomic import TEMP_GLOB, atomic_path, write_json_atomic
from acetune.data.shard_map import MappedShard
from acetune.errors import CacheError

CACHE_FORMAT_VERSION = 1
INDEX_FILE = "index.json"
FINGERPRINT_FILE = "fingerprint.json"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".safetensors"
LEGACY_TMP_SUFFIX = ".tmp"
KEY_SEPARATOR = "::"


@dataclass
class CacheEntry:
    """One sample in the index: where its tensors are and what it was made from."""

    id: str  # the source path relative to the dataset root (posix): unique
    shard: str
    input_hash: str  # audio bytes + prompt/lyric text + options: equal hash -> reuse
    latent_length: int
    condition_length: int
    tensors: list[str] = field(default_factory=list)  # names stored for this sample
    metadata: dict[str, Any] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return f"{self.id}{KEY_SEPARATOR}{name}"


def read_index(folder: Path) -> list[CacheEntry]:
    path = folder / INDEX_FILE
    if not path.is_file():
        raise CacheError("not a cache: index.json is missing", path=folder,
                         fix="run `acetune preprocess` to build the cache")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data["format_version"]
        rows = data["samples"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise CacheError(f"index.json is unreadable ({type(err).__name__}: {err})", path=path,
                         fix="rebuild the cache with `acetune preprocess --rebuild`") from err
    if version != CACHE_FORMAT_VERSION:
        raise CacheError(f"cache format version {version} is not supported (this acetune reads {CACHE_FORMAT_VERSION})",
                         path=path, fix="rebuild the cache with `acetune preprocess --rebuild`")
    try:
        return [CacheEntry(**row) for row in rows]
    except TypeError as err:
        raise CacheError(f"index.json has a malformed entry ({err})", path=path) from err


class CacheWriter:
    """Adds samples to a cache folder in shards; `flush` makes everything added so far durable."""

    def __init__(self, folder: Path, entries: list[CacheEntry], *, shard_max_bytes: int = 256 * 2**20):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.entries = {e.id: e for e in entries}
        self.shard_max_bytes = shard_max_bytes
        self._pending: list[tuple[CacheEntry, dict[str, torch.Tensor]]] = []
        self._pending_bytes = 0
        # left by a run killed mid-write (older versions named theirs *.tmp)
        for stray in [*self.folder.glob(f"*{LEGACY_TMP_SUFFIX}"), *self.folder.glob(TEMP_GLOB)]:
            stray.unlink()  # never referenced by the index

    def add(self, entry: CacheEntry, tensors: dict[str, torch.Tensor]) -> None:
        self._pending.append((entry, {k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
        self._pending_bytes += sum(t.numel() * t.element_size() for t in tensors.values())
        if self._pending_bytes >= self.shard_max_bytes:
            self.flush()

    def flush(self) -> None:
        """Write pending samples as one new shard, then the index that references it."""
        if self._pending:
            name = self._next_shard_name()
            tensors: dict[str, torch.Tensor] = {}
            for entry, sample_tensors in self._pending:
                entry.shard = name
                entry.tensors = sorted(sample_tensors)
                tensors.update({entry.key(k): v for k, v in sample_tensors.items()})
            with atomic_path(self.folder / name, size=self._pending_bytes) as tmp:  # size: for a full disk
                save_file(tensors, str(tmp), metadata={"format": "acetune-cache", "version": str(CACHE_FORMAT_VERSION)})
            for entry, _ in self._pending:
                self.entries[entry.id] = entry
            self._pending, self._pending_bytes = [], 0
        self._write_index()

    def close(self) -> None:
        self.flush()
        self._delete_unreferenced_shards()

    def _write_index(self) -> None:
        rows = [asdict(self.entries[k]) for k in sorted(self.entries)]
        write_json_atomic(self.folder / INDEX_FILE, {"format_version": CACHE_FORMAT_VERSION, "samples": rows},
                          indent=1)

    def _next_shard_name(self) -> str:
        numbers = [int(p.name[len(SHARD_PREFIX):-len(SHARD_SUFFIX)]) for p in self.folder.glob(f"{SHARD_PREFIX}*{SHARD_SUFFIX}")]
        return f"{SHARD_PREFIX}{max(numbers, default=-1) + 1:05d}{SHARD_SUFFIX}"

    def _delete_unreferenced_shards(self) -> None:
        used = {e.shard for e in self.entries.values()}
        for shard in self.folder.glob(f"{SHARD_PREFIX}*{SHARD_SUFFIX}"):
            if shard.name not in used:
                shard.unlink()


class CacheReader:
    """Random access to cached samples: each shard is memory-mapped once; tensors are zero-copy views."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.entries = read_index(self.folder)
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        self._shards: dict[str, MappedShard] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def index_of(self, sample_id: str) -> int:
        return self._by_id[sample_id]

    def load(self, index: int) -> dict[str, torch.Tensor]:
        entry = self.entries[index]
        shard = self._shard(entry.shard)
        return {name: shard.tensor(entry.key(name)) for name in entry.tensors}

    def _shard(self, name: str) -> MappedShard:
        if name not in self._shards:
            path = self.folder / name
            if not path.is_file():
                raise CacheError(f"the index references a missing shard {name}", path=self.folder,
                                 fix="rebuild the cache with `acetune preprocess --rebuild`")
            self._shards[name] = MappedShard(path)
        return self._shards[name]
