"""The cache format: round trip, zero-copy reads, crash safety, pruning, corrupt files, fingerprints."""

from __future__ import annotations

import json

import pytest
import torch

from acetune.data.cache import INDEX_FILE, CacheEntry, CacheReader, CacheWriter, read_index
from acetune.data.fingerprint import Fingerprint, file_digest, require_match, write_fingerprint
from acetune.errors import CacheError, CacheMismatchError


def sample(i: int, frames: int = 20) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    return {"target_latents": torch.randn(frames + i, 8, generator=g),
            "encoder_hidden_states": torch.randn(5 + i, 16, generator=g).bfloat16()}


def entry(i: int) -> CacheEntry:
    return CacheEntry(f"dir/song {i}.wav", "", f"hash{i}", 20 + i, 5 + i, metadata={"caption": f"song {i}"})


def write(folder, ids, **kwargs) -> CacheWriter:
    writer = CacheWriter(folder, [], **kwargs)
    for i in ids:
        writer.add(entry(i), sample(i))
    writer.close()
    return writer


def test_round_trip_and_metadata(tmp_path):
    write(tmp_path, range(5), shard_max_bytes=2000)  # small shards: several files
    assert len(list(tmp_path.glob("shard-*.safetensors"))) > 1
    reader = CacheReader(tmp_path)
    assert len(reader) == 5
    for i in range(5):
        got = reader.load(reader.index_of(f"dir/song {i}.wav"))
        assert set(got) == {"target_latents", "encoder_hidden_states"}
        for name, tensor in sample(i).items():
            assert torch.equal(got[name], tensor) and got[name].dtype == tensor.dtype
    assert reader.entries[reader.index_of("dir/song 3.wav")].metadata == {"caption": "song 3"}


def test_reads_are_views_that_never_write_back(tmp_path):
    write(tmp_path, [0])
    shard = next(tmp_path.glob("shard-*.safetensors"))
    before = shard.read_bytes()
    tensors = CacheReader(tmp_path).load(0)
    tensors["target_latents"].add_(1.0)  # copy-on-write: the file must not change
    assert shard.read_bytes() == before
    assert torch.equal(CacheReader(tmp_path).load(0)["target_latents"], sample(0)["target_latents"])


def test_interrupted_run_leaves_a_readable_cache(tmp_path):
    writer = CacheWriter(tmp_path, [])
    for i in range(3):
        writer.add(entry(i), sample(i))
    writer.flush()
    writer.add(entry(3), sample(3))  # pending, never flushed: as if the process died here
    (tmp_path / "shard-00009.safetensors.tmp").write_bytes(b"half a shard")  # a torn write
    reader = CacheReader(tmp_path)
    assert len(reader) == 3 and all(reader.load(i) for i in range(3))
    resumed = CacheWriter(tmp_path, read_index(tmp_path))
    assert not list(tmp_path.glob("*.tmp"))  # strays are cleaned when writing resumes
    resumed.add(entry(3), sample(3))
    resumed.close()
    assert len(CacheReader(tmp_path)) == 4


def test_removed_samples_and_unreferenced_shards_are_pruned(tmp_path):
    write(tmp_path, range(4), shard_max_bytes=1)  # one shard per sample
    assert len(list(tmp_path.glob("shard-*.safetensors"))) == 4
    kept = [e for e in read_index(tmp_path) if e.id != "dir/song 2.wav"]
    CacheWriter(tmp_path, kept).close()
    assert len(list(tmp_path.glob("shard-*.safetensors"))) == 3
    assert [e.id for e in read_index(tmp_path)] == ["dir/song 0.wav", "dir/song 1.wav", "dir/song 3.wav"]


def test_missing_corrupt_and_truncated_files_are_named(tmp_path):
    with pytest.raises(CacheError, match="index.json is missing"):
        CacheReader(tmp_path)
    write(tmp_path, [0, 1])
    shard = next(tmp_path.glob("shard-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:200])
    with pytest.raises(CacheError, match="shard") as err:
        CacheReader(tmp_path).load(0)
    assert shard.name in str(err.value)
    shard.unlink()
    with pytest.raises(CacheError, match="missing shard"):
        CacheReader(tmp_path).load(0)
    data = json.loads((tmp_path / INDEX_FILE).read_text())
    (tmp_path / INDEX_FILE).write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(CacheError, match="format version 99"):
        CacheReader(tmp_path)
    (tmp_path / INDEX_FILE).write_text("{broken")
    with pytest.raises(CacheError, match="index.json is unreadable"):
        CacheReader(tmp_path)


def fingerprint(**overrides) -> Fingerprint:
    base = dict(variant="turbo", model="a" * 64, vae="b" * 64, text_encoder="c" * 64, tokenizer="d" * 64,
                options={"seed": 0, "normalize": "none"})
    return Fingerprint(**{**base, **overrides})


def test_fingerprint_mismatch_lists_every_difference(tmp_path):
    write_fingerprint(tmp_path, fingerprint())
    require_match(tmp_path, fingerprint())
    with pytest.raises(CacheMismatchError) as err:
        require_match(tmp_path, fingerprint(variant="base", model="e" * 64, options={"seed": 1, "normalize": "none"}))
    text = str(err.value)
    assert "variant: cache turbo, now base" in text
    assert "model: cache aaaaaaaaaaaa, now eeeeeeeeeeee" in text
    assert "options.seed: cache 0, now 1" in text
    assert "vae" not in text


def test_file_digest_sees_a_changed_byte(tmp_path):
    path = tmp_path / "w.bin"
    data = bytearray(torch.randn(3_000_000).numpy().tobytes())
    path.write_bytes(bytes(data))
    first = file_digest(path)
    data[len(data) // 2] ^= 1  # the middle sample covers this byte
    path.write_bytes(bytes(data))
    assert file_digest(path) != first
