"""Cache read speed: our sharded safetensors cache vs one `.pt` file per sample read with torch.load,
and what checking each sample's checksum on its first load costs (training's reader does that).

Run:  python bench/cache_read.py                 (2,000 samples: 30 s latents + 256 condition tokens, bf16)
      python bench/cache_read.py --samples 200 --frames 1500 --cond 300

Both formats hold the same tensors (target_latents [T, 64], encoder_hidden_states [L, width]).
Each is read completely twice and the second (warm page cache) pass is timed, so the numbers
compare the formats, not the disk. The `.pt` baseline is what the upstream trainers read.
The checksum rows read through a fresh `CacheReader(verify=True)`, so every sample is hashed
(SHA-256): the cost a training run pays once per sample, in its first epoch.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acetune.data.cache import CacheEntry, CacheReader, CacheWriter  # noqa: E402
from acetune.model.weights import parse_dtype  # noqa: E402


def make_sample(index: int, frames: int, cond: int, width: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(index)
    jitter = index % 7  # lengths vary a little, as real songs do
    return {
        "target_latents": torch.randn(frames - jitter, 64, generator=g).to(dtype),
        "encoder_hidden_states": torch.randn(cond - jitter, width, generator=g).to(dtype),
    }


def build(root: Path, samples: int, frames: int, cond: int, width: int, dtype: torch.dtype) -> tuple[Path, Path]:
    cache, pt_dir = root / "cache", root / "pt"
    pt_dir.mkdir(parents=True)
    writer = CacheWriter(cache, [], shard_max_bytes=512 * 2**20)
    for i in range(samples):
        tensors = make_sample(i, frames, cond, width, dtype)
        sample_id = f"songs/song_{i:05d}.flac"
        writer.add(CacheEntry(sample_id, "", f"{i:064x}", tensors["target_latents"].shape[0],
                              tensors["encoder_hidden_states"].shape[0]), tensors)
        torch.save(tensors, pt_dir / f"song_{i:05d}.pt")
    writer.close()
    return cache, pt_dir


def read_cache(cache: Path, copy: bool, verify: bool = False) -> int:
    reader = CacheReader(cache, verify=verify)
    total = 0
    for i in range(len(reader)):
        tensors = reader.load(i).values()
        total += sum((t.clone() if copy else t).numel() for t in tensors)
    return total


def read_pt(pt_dir: Path, copy: bool) -> int:
    total = 0
    for path in sorted(pt_dir.glob("*.pt")):
        tensors = torch.load(path, weights_only=True).values()
        total += sum((t.clone() if copy else t).numel() for t in tensors)
    return total


def read_verified(cache: Path, copy: bool) -> int:
    return read_cache(cache, copy, verify=True)


def timed(fn, arg, copy: bool) -> tuple[float, int]:
    fn(arg, copy)  # warm the page cache
    start = time.perf_counter()
    count = fn(arg, copy)
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=750, help="latent frames per sample (25/s)")
    parser.add_argument("--cond", type=int, default=256, help="condition tokens per sample")
    parser.add_argument("--width", type=int, default=2048, help="condition width (2048 for the 2B models)")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: a temp folder, removed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="acetune-bench-", dir=args.dir))
    try:
        start = time.perf_counter()
        cache, pt_dir = build(root, args.samples, args.frames, args.cond, args.width, parse_dtype(args.dtype))
        build_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in cache.iterdir()) / 2**30
        print(f"{args.samples} samples ({args.frames} frames + {args.cond} x {args.width} condition, {args.dtype}), "
              f"{size:.2f} GiB cache, built both formats in {build_s:.1f} s")
        for copy, title in ((False, "read"), (True, "read + copy every byte (what a collate does)")):
            cache_s, cache_count = timed(read_cache, cache, copy)
            pt_s, pt_count = timed(read_pt, pt_dir, copy)
            assert cache_count == pt_count, "both formats must hold the same data"
            print(f"{title}:")
            print(f"  safetensors shards : {cache_s:8.3f} s  {args.samples / cache_s:10.0f} samples/s")
            print(f"  one .pt per sample : {pt_s:8.3f} s  {args.samples / pt_s:10.0f} samples/s")
            print(f"  speed-up           : {pt_s / cache_s:8.1f} x  (goal >= 10 x)")
            verified_s, verified_count = timed(read_verified, cache, copy)
            assert verified_count == cache_count
            print(f"  shards + checksums : {verified_s:8.3f} s  {args.samples / verified_s:10.0f} samples/s  "
                  f"(+{1000 * (verified_s - cache_s) / args.samples:.2f} ms per sample, first epoch only; "
                  f"{size * 1024 / max(verified_s - cache_s, 1e-9):.0f} MiB/s hashed)")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
