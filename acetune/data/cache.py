"""The preprocessed cache: safetensors shards + a JSON index, written crash-safely, read memory-mapped.

Layout of a cache folder:

    fingerprint.json            what made the cache (see fingerprint.py)
    index.json                  format version + one entry per sample (shard, lengths, hashes, labels)
    shard-00000.safetensors     tensors "<sample id>::<name>", e.g. "songs/a.flac::target_latents"

Each entry carries a SHA-256 checksum of its tensors (names, dtypes, shapes and bytes), taken from the
tensors as they were handed to the writer. `CacheReader` checks a sample's checksum the first time it
loads it in a process (training pays this once per sample: see bench/cache_read.py), and
`acetune dataset validate` checks them all. Caches of format version 1 have no checksums: they load,
and validate says so. The index is read as untrusted input: a shard name is only ever the plain
`shard-NNNNN.safetensors` form, so no index can make acetune open a file outside the cache folder.

Shards are immutable once written: each is written to a temporary name and renamed, and only
then does the index (itself replaced atomically) reference it. A run killed at any moment
therefore leaves a readable cache whose index names only complete shards; stray temporary
files are removed on the next open for writing. Shards no entry references are deleted.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from acetune.atomic import TEMP_GLOB, atomic_path, write_json_atomic
from acetune.data.shard_map import REBUILD_FIX, MappedShard
from acetune.errors import CacheError, echoed

CACHE_FORMAT_VERSION = 2  # 2: every entry has a checksum
READABLE_FORMAT_VERSIONS = (1, 2)  # 1: the same layout without checksums
INDEX_FILE = "index.json"
FINGERPRINT_FILE = "fingerprint.json"
SHARD_PREFIX = "shard-"
SHARD_SUFFIX = ".safetensors"
LEGACY_TMP_SUFFIX = ".tmp"
KEY_SEPARATOR = "::"
SHARD_NAME = re.compile(rf"{SHARD_PREFIX}[0-9]{{5,}}{re.escape(SHARD_SUFFIX)}")  # the only names a shard has
CHECKSUM_PREFIX = "sha256:"


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
    checksum: str = ""  # "sha256:<hex>" of `sample_checksum`; "" in caches made before checksums

    def key(self, name: str) -> str:
        return f"{self.id}{KEY_SEPARATOR}{name}"


_ENTRY_TYPES = {"id": str, "shard": str, "input_hash": str, "latent_length": int, "condition_length": int,
                "tensors": list, "metadata": dict, "checksum": str}


def sample_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over each tensor's name, dtype, shape and bytes, in name order (CPU tensors)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())
    return CHECKSUM_PREFIX + digest.hexdigest()


def read_index(folder: Path) -> list[CacheEntry]:
    path = folder / INDEX_FILE
    if not path.is_file():
        raise CacheError("not a cache: index.json is missing", path=folder,
                         fix="run `acetune preprocess` to build the cache")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data["format_version"]
        rows = data["samples"]
    except (ValueError, RecursionError, UnicodeDecodeError, KeyError, TypeError) as err:  # ValueError: bad JSON
        raise CacheError(f"index.json is unreadable ({type(err).__name__}: {echoed(str(err))})", path=path,
                         fix=REBUILD_FIX) from err
    if version not in READABLE_FORMAT_VERSIONS:
        raise CacheError(f"cache format version {echoed(version)} is not supported (this acetune reads "
                         f"{' and '.join(map(str, READABLE_FORMAT_VERSIONS))})",
                         path=path, fix=REBUILD_FIX)
    if not isinstance(rows, list):
        raise CacheError("index.json has no list of samples", path=path, fix=REBUILD_FIX)
    return [_entry(row, number, path) for number, row in enumerate(rows, start=1)]


def _entry(row: Any, number: int, path: Path) -> CacheEntry:
    """One index row, checked field by field: the index is untrusted input (a shard name becomes a path)."""
    known = {f.name for f in fields(CacheEntry)}
    if not isinstance(row, dict) or not {"id", "shard", "input_hash", "latent_length", "condition_length"} <= set(row) \
            or not set(row) <= known:
        raise CacheError(f"index.json entry {number} is malformed (expected the fields {', '.join(sorted(known))})",
                         path=path, fix=REBUILD_FIX)
    for name, value in row.items():
        if not isinstance(value, _ENTRY_TYPES[name]) or isinstance(value, bool):
            raise CacheError(f"index.json entry {number}: {name} is {echoed(value)}, not "
                             f"of type {_ENTRY_TYPES[name].__name__}", path=path, fix=REBUILD_FIX)
    if not all(isinstance(name, str) for name in row.get("tensors", [])):
        raise CacheError(f"index.json entry {number}: tensor names must be strings", path=path, fix=REBUILD_FIX)
    if SHARD_NAME.fullmatch(row["shard"]) is None:
        raise CacheError(f"index.json entry {number} ({echoed(row['id'])}) names the shard {echoed(row['shard'])}; "
                         "a shard is a plain file name shard-NNNNN.safetensors inside the cache folder",
                         path=path, fix=REBUILD_FIX)
    return CacheEntry(**row)


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
        cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        entry.checksum = sample_checksum(cpu)
        self._pending.append((entry, cpu))
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
    """Random access to cached samples: each shard is memory-mapped once; tensors are zero-copy views.

    With `verify` (the default), the first load of each sample checks its checksum: damaged bytes are a
    `CacheError` naming the sample and its shard, never silently trained on."""

    def __init__(self, folder: str | Path, *, verify: bool = True):
        self.folder = Path(folder)
        self.entries = read_index(self.folder)
        self.verify = verify
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        self._shards: dict[str, MappedShard] = {}
        self._verified: set[int] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def index_of(self, sample_id: str) -> int:
        return self._by_id[sample_id]

    @property
    def checksummed(self) -> int:
        """How many samples carry a checksum (all of them, unless the cache predates checksums)."""
        return sum(1 for e in self.entries if e.checksum)

    def load(self, index: int) -> dict[str, torch.Tensor]:
        entry = self.entries[index]
        shard = self._shard(entry.shard)
        tensors = {name: shard.tensor(entry.key(name)) for name in entry.tensors}
        if self.verify and entry.checksum and index not in self._verified:
            if sample_checksum(tensors) != entry.checksum:
                raise CacheError(f"sample {echoed(entry.id)} fails its checksum: its bytes in {entry.shard} changed "
                                 "after preprocessing (a disk or copy error, or an edit)", path=self.folder,
                                 fix="`acetune dataset validate` lists every damaged sample; "
                                     "rebuild the cache with `acetune preprocess --rebuild`")
            self._verified.add(index)
        return tensors

    def _shard(self, name: str) -> MappedShard:
        if name not in self._shards:
            path = self.folder / name  # `name` is a plain shard file name: read_index checked it
            if not path.exists():
                raise CacheError(f"the index references a missing shard {name}", path=self.folder, fix=REBUILD_FIX)
            if not path.is_file() or path.resolve().parent != self.folder.resolve():
                raise CacheError(f"shard {name} is not a regular file inside the cache folder (a link or a "
                                 "special file)", path=path, fix=REBUILD_FIX)
            self._shards[name] = MappedShard(path)
        return self._shards[name]
