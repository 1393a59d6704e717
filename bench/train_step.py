"""Trainer step benchmark: LoRA on a frozen decoder, fed from a real cache through the real collate.

Run:  python bench/train_step.py --config small            (CPU, fp32)
      python bench/train_step.py --config mid
      python bench/train_step.py --config 2b --device cuda --dtype bf16

Reports step time, tokens/s, peak memory, analytic FLOPs and their share of a GEMM peak measured
in the same run, and the loader stall share (time spent reading and collating batches). One
step = grad_accum micro-batches of `--batch` samples of `--frames` latent frames (1500 = 60 s =
750 tokens). FLOPs: decoder forward x 2 (activation gradients through the frozen base) plus the
adapter's own weight gradients, which are negligible.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_step import decoder_forward_flops, measure_gemm_peak, peak_memory_bytes, sync  # noqa: E402

from acetune.adapters import attach  # noqa: E402
from acetune.config import AdapterConfig, OptimConfig  # noqa: E402
from acetune.data.cache import CacheEntry, CacheReader, CacheWriter  # noqa: E402
from acetune.model import AttentionOptions, build_model, named_config  # noqa: E402
from acetune.model.weights import parse_dtype  # noqa: E402
from acetune.train.batching import Item, collate  # noqa: E402
from acetune.train.objective import draw, timesteps_from, velocity_loss  # noqa: E402
from acetune.train.optim import build_optimizer  # noqa: E402


def synthetic_cache(folder: Path, samples: int, frames: int, cond: int, cond_width: int, channels: int) -> CacheReader:
    writer = CacheWriter(folder, [])
    for i in range(samples):
        writer.add(CacheEntry(f"song{i}.wav", "", "h", frames, cond),
                   {"target_latents": torch.randn(frames, channels), "encoder_hidden_states": torch.randn(cond, cond_width)})
    writer.close()
    return CacheReader(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small")
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--cond-len", type=int, default=300)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpointing", type=float, default=0.0)
    args = parser.parse_args()

    device, dtype = torch.device(args.device), parse_dtype(args.dtype)
    cfg = named_config(args.config)
    model = build_model(cfg, AttentionOptions(honor_padding=True), meta=True)
    decoder = model.decoder.to_empty(device=device)
    with torch.no_grad():
        for name, param in decoder.named_parameters():
            param.fill_(1.0) if name.endswith("norm.weight") else param.normal_(0.0, 0.02)
    decoder = decoder.to(dtype)
    null = torch.zeros(1, 1, cfg.condition_hidden_size, device=device, dtype=dtype)
    adapter = attach(decoder, AdapterConfig(rank=args.rank, alpha=2.0 * args.rank, dropout=0.0), seed=0)
    decoder.set_gradient_checkpointing(args.checkpointing)
    for param in adapter.trainable_parameters.values():
        param.data = param.data.float()
    optimizer = build_optimizer(adapter.param_groups(1e-4, 0.01), OptimConfig(), device)
    rss_before = peak_memory_bytes(device)
    with tempfile.TemporaryDirectory() as tmp:
        reader = synthetic_cache(Path(tmp), 8, args.frames, args.cond_len, cfg.condition_hidden_size,
                                 cfg.audio_acoustic_hidden_dim)
        silence = torch.randn(1, args.frames, cfg.audio_acoustic_hidden_dim)
        generator = torch.Generator().manual_seed(0)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else torch.autocast("cpu", enabled=False)
        loader_s = 0.0

        def step() -> float:
            nonlocal loader_s
            for micro in range(args.grad_accum):
                start = time.perf_counter()
                items = [Item((micro * args.batch + i) % len(reader), 0, args.frames) for i in range(args.batch)]
                batch = collate(reader, items, silence).to(device, dtype)
                loader_s += time.perf_counter() - start
                draws = draw(batch.size, batch.target_latents.shape, generator)
                t = timesteps_from(draws, discrete=False, mu=-0.4, sigma=1.0).to(device)
                draws = type(draws)(draws.cfg_u.to(device), draws.noise.to(device), draws.n_t, draws.n_r)
                with autocast:
                    out = velocity_loss(decoder, null, batch.target_latents, batch.frame_mask,
                                        batch.encoder_hidden_states, batch.encoder_mask, batch.context_latents,
                                        draws, t=t, cfg_ratio=0.15)
                (out.loss / args.grad_accum).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return out.loss.item()

        step()  # warm-up
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        loader_s = 0.0
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync(device)
        step_s = (time.perf_counter() - start) / args.steps
        stall = loader_s / args.steps / step_s
    tokens = args.batch * args.grad_accum * ((args.frames + 1) // 2)
    flops = 2 * decoder_forward_flops(cfg, args.batch * args.grad_accum, args.frames, args.cond_len)
    peak = measure_gemm_peak(device, dtype, 8192 if device.type == "cuda" else 2048, 20 if device.type == "cuda" else 5)
    mem = peak_memory_bytes(device)
    print(f"LoRA r{args.rank} on decoder {args.config} ({sum(p.numel() for p in decoder.parameters()) / 1e6:.1f} M "
          f"params, {adapter.num_trainable / 1e6:.2f} M trainable), {args.dtype} on {device}, "
          f"{args.batch} x {args.grad_accum} x {args.frames} frames, checkpointing {args.checkpointing}")
    print(f"  step               {step_s * 1000:10.1f} ms")
    print(f"  tokens/s           {tokens / step_s:10.1f}")
    kind = "peak allocated" if device.type == "cuda" else "process peak RSS"
    print(f"  {kind:<18} {mem / 2**30:10.3f} GiB" + (f" (before the run {rss_before / 2**30:.3f})" if device.type == "cpu" else ""))
    print(f"  analytic FLOPs     {flops / 1e12:10.3f} TFLOP/step, achieved {flops / step_s / 1e12:.3f} TFLOP/s "
          f"= {100 * flops / step_s / peak:.1f} % of the GEMM peak ({peak / 1e12:.3f} TFLOP/s)")
    print(f"  loader stall       {100 * stall:10.1f} % of the step")


if __name__ == "__main__":
    main()
