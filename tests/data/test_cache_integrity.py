"""The cache is checked and confined: per-sample checksums (written, verified on first load and by validate),
caches from before checksums still load, a garbled shard is a named error, and a crafted index.json can
never make acetune open a file outside the cache folder."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from acetune.data import cache as cache_module
from acetune.data.cache import INDEX_FILE, CacheEntry, CacheReader, CacheWriter, read_index, sample_checksum
from acetune.data.fingerprint import Fingerprint, write_fingerprint
from acetune.data.validate import validate_cache
from acetune.errors import CacheError


def sample(i: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    return {"target_latents": torch.randn(20 + i, 8, generator=g),
            "encoder_hidden_states": torch.randn(5 + i, 16, generator=g).bfloat16()}


def write(folder, ids) -> None:
    writer = CacheWriter(folder, [])
    for i in ids:
        writer.add(CacheEntry(f"song {i}.wav", "", f"h{i}", 20 + i, 5 + i), sample(i))
    writer.close()
    write_fingerprint(folder, Fingerprint("turbo", "a" * 64, "b" * 64, "c" * 64, "d" * 64, {}))


def flip_byte_of(folder, sample_id: str, name: str = "target_latents") -> None:
    """Flip one bit inside the stored bytes of one tensor of one sample (as a bad disk sector would)."""
    entry = next(e for e in read_index(folder) if e.id == sample_id)
    shard = folder / entry.shard
    data = bytearray(shard.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    start = json.loads(data[8:8 + header_len])[entry.key(name)]["data_offsets"][0]
    data[8 + header_len + start + 7] ^= 0x04
    shard.write_bytes(bytes(data))


def test_every_entry_carries_the_checksum_of_its_tensors(tmp_path):
    write(tmp_path, range(3))
    for i, entry in enumerate(read_index(tmp_path)):
        assert entry.checksum == sample_checksum(sample(i)) and entry.checksum.startswith("sha256:")
    assert sample_checksum(sample(0)) != sample_checksum(sample(1))
    renamed = {"latents": sample(0)["target_latents"], "encoder_hidden_states": sample(0)["encoder_hidden_states"]}
    assert sample_checksum(renamed) != sample_checksum(sample(0))  # names count, not only bytes


def test_a_flipped_byte_is_caught_on_load_and_by_validate(tmp_path):
    write(tmp_path, range(3))
    flip_byte_of(tmp_path, "song 1.wav")
    reader = CacheReader(tmp_path)
    assert reader.load(0) and reader.load(2)  # the others are fine
    with pytest.raises(CacheError, match="'song 1.wav' fails its checksum") as err:
        reader.load(1)
    assert "shard-00000.safetensors" in str(err.value) and "--rebuild" in err.value.fix
    report = validate_cache(tmp_path)
    assert not report.ok and len(report.problems) == 1 and report.problems[0].startswith("song 1.wav: ")
    assert CacheReader(tmp_path, verify=False).load(1)  # the bytes are still readable when asked not to check


def test_a_sample_is_hashed_once_per_reader(tmp_path, monkeypatch):
    write(tmp_path, range(2))
    reader = CacheReader(tmp_path)
    calls = []
    real = cache_module.sample_checksum
    monkeypatch.setattr(cache_module, "sample_checksum", lambda tensors: calls.append(1) or real(tensors))
    for _ in range(3):
        reader.load(0)
        reader.load(1)
    assert len(calls) == 2


def test_reused_entries_keep_their_checksums(tmp_path):
    write(tmp_path, range(2))
    before = {e.id: e.checksum for e in read_index(tmp_path)}
    writer = CacheWriter(tmp_path, read_index(tmp_path))
    writer.add(CacheEntry("song 2.wav", "", "h2", 22, 7), sample(2))
    writer.close()
    after = {e.id: e.checksum for e in read_index(tmp_path)}
    assert {k: after[k] for k in before} == before and after["song 2.wav"] == sample_checksum(sample(2))


def test_a_cache_from_before_checksums_loads_and_validate_says_so(tmp_path):
    write(tmp_path, range(2))
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    for row in index["samples"]:
        del row["checksum"]
    (tmp_path / INDEX_FILE).write_text(json.dumps({"format_version": 1, "samples": index["samples"]}))
    reader = CacheReader(tmp_path)
    assert torch.equal(reader.load(1)["target_latents"], sample(1)["target_latents"])
    report = validate_cache(tmp_path)
    assert report.ok and report.unchecksummed == 2


@pytest.mark.parametrize("mutate, words", [
    (lambda data: b"\x40" + b"\x00" * 7 + b"\xff" * 64 + data[72:], "does not parse"),  # garbage JSON
    (lambda data: struct.pack("<Q", 2**60) + data[8:], "header too large"),
    (lambda data: data[:-10], "not fully covered"),  # truncated
    (lambda data: struct.pack("<Q", 2) + b"[]", "does not parse"),  # valid JSON, not a header
    (lambda data: b"", "header too small"),
])
def test_a_damaged_shard_header_is_a_named_error(tmp_path, mutate, words):
    write(tmp_path, [0])
    shard = next(tmp_path.glob("shard-*.safetensors"))
    shard.write_bytes(mutate(shard.read_bytes()))
    with pytest.raises(CacheError, match=f"shard {shard.name} is damaged") as err:
        CacheReader(tmp_path).load(0)
    assert words in str(err.value) and "acetune preprocess --rebuild" in err.value.fix


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "sub/shard-00000.safetensors",
                                   "shard-00000.safetensors/../../outside.safetensors", "shard-1.safetensors",
                                   "shard-00000.safetensors\n", "..", ""])
def test_a_crafted_shard_name_is_refused_before_anything_is_opened(tmp_path, monkeypatch, shard):
    cache = tmp_path / "cache"
    write(cache, [0])
    (tmp_path / "outside.safetensors").write_text("SECRET-CONTENT")
    index = json.loads((cache / INDEX_FILE).read_text())
    index["samples"][0]["shard"] = shard
    (cache / INDEX_FILE).write_text(json.dumps(index))
    monkeypatch.setattr(cache_module, "MappedShard", lambda path: pytest.fail(f"opened {path}"))
    with pytest.raises(CacheError, match="a shard is a plain file name shard-NNNNN.safetensors") as err:
        CacheReader(cache)
    assert "SECRET" not in str(err.value) and str(cache / INDEX_FILE) in str(err.value)


def test_a_shard_that_links_outside_the_cache_is_refused(tmp_path):
    cache = tmp_path / "cache"
    write(cache, [0])
    shard = next(cache.glob("shard-*.safetensors"))
    outside = tmp_path / "elsewhere.safetensors"
    shard.rename(outside)
    shard.symlink_to(outside)
    with pytest.raises(CacheError, match="not a regular file inside the cache folder"):
        CacheReader(cache).load(0)


@pytest.mark.parametrize("change, words", [
    ({"tensors": 5}, "tensors is 5, not of type list"),
    ({"tensors": [1]}, "tensor names must be strings"),
    ({"latent_length": "20"}, "latent_length is '20', not of type int"),
    ({"extra_field": 1}, "entry 1 is malformed"),
])
def test_a_malformed_index_entry_is_named(tmp_path, change, words):
    write(tmp_path, [0])
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    index["samples"][0].update(change)
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(CacheError, match=words):
        CacheReader(tmp_path)


def test_a_hostile_index_json_is_a_named_error(tmp_path):
    write(tmp_path, [0])
    (tmp_path / INDEX_FILE).write_text('{"format_version": 2, "samples": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(CacheError, match="index.json is unreadable"):
        CacheReader(tmp_path)


@pytest.mark.parametrize("text", ['{"variant": ' + "[" * 5000 + "]" * 5000 + "}", '{"variant": ' + "9" * 5000 + "}",
                                  '{"format_version": 2, "acetune_version": "x", "variant": "turbo", "model": "a", '
                                  '"vae": "b", "text_encoder": "c", "tokenizer": "d", "options": []}'])
def test_a_hostile_fingerprint_is_a_named_error(tmp_path, text):
    write(tmp_path, [0])
    (tmp_path / "fingerprint.json").write_text(text)
    with pytest.raises(CacheError, match="fingerprint.json is (unreadable|malformed)"):
        validate_cache(tmp_path)
