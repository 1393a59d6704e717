"""Decoder forward+backward benchmark: time, tokens/s, peak memory, analytic FLOPs vs a measured GEMM peak.

Run:  python bench/model_step.py --config small --frames 1500           (CPU, fp32)
      python bench/model_step.py --config 2b --device cuda --dtype bf16  (GPU)

A 60 s clip is 1500 latent frames = 750 DiT tokens. FLOPs count the dense work the kernels do
(sliding-window layers are computed as full P x P attention with a mask). `--train full`
counts weight gradients (3x forward); `--train frozen` only activation gradients (2x forward),
as with a frozen base and small adapters.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acetune.model import build_model, named_config  # noqa: E402
from acetune.model.config import ModelConfig  # noqa: E402
from acetune.model.weights import parse_dtype  # noqa: E402


def decoder_forward_flops(cfg: ModelConfig, batch: int, frames: int, cond_len: int) -> float:
    """Multiply-adds x 2 of one decoder forward (matmuls and attention; elementwise work ignored)."""
    d, hd, f = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    q_width, kv_width = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    p = math.ceil(frames / cfg.patch_size)
    c = cfg.audio_acoustic_hidden_dim
    per_layer = (
        2 * p * d * (2 * q_width + 2 * kv_width)  # self q, k, v, o
        + 4 * p * p * q_width  # self scores + weighted values
        + 2 * p * d * 2 * q_width + 2 * cond_len * d * 2 * kv_width  # cross q, o and k, v
        + 4 * p * cond_len * q_width  # cross scores + values
        + 2 * p * d * f * 3  # SwiGLU
    )
    top = (
        2 * p * cfg.in_channels * cfg.patch_size * d  # patchify
        + 2 * p * d * c * cfg.patch_size  # de-patchify
        + 2 * cond_len * cfg.condition_hidden_size * d  # condition_embedder
    )
    time_embed = 2 * 2 * (256 * d + d * d + d * 6 * d)  # per sample, t and r
    return batch * (cfg.num_hidden_layers * per_layer + top + time_embed)


def measure_gemm_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # process peak RSS (Linux: KiB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", help="tiny, small, 2b or xl")
    parser.add_argument("--frames", type=int, default=1500, help="latent frames (25/s); 1500 = 60 s = 750 tokens")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cond-len", type=int, default=300, help="packed condition length (lyrics+timbre+text)")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--train", choices=("full", "frozen"), default="full")
    parser.add_argument("--checkpointing", type=float, default=0.0, help="gradient checkpointing ratio")
    parser.add_argument("--gemm-size", type=int, default=0, help="GEMM side for the peak (default 2048 CPU / 8192 GPU)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args()

    device, dtype = torch.device(args.device), parse_dtype(args.dtype)
    cfg = named_config(args.config)
    rss_before = peak_memory_bytes(device)
    decoder = build_model(cfg, meta=True).decoder.to_empty(device=device)  # only the decoder is materialised
    with torch.no_grad():
        for name, param in decoder.named_parameters():
            param.fill_(1.0) if name.endswith("norm.weight") else param.normal_(0.0, 0.02)
    decoder = decoder.to(dtype).train()
    decoder.set_gradient_checkpointing(args.checkpointing)
    if args.train == "frozen":
        decoder.requires_grad_(False)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(args.batch, args.frames, cfg.audio_acoustic_hidden_dim, device=device, dtype=dtype, generator=g)
    ctx = torch.randn(args.batch, args.frames, 2 * cfg.audio_acoustic_hidden_dim, device=device, dtype=dtype, generator=g)
    enc = torch.randn(args.batch, args.cond_len, cfg.condition_hidden_size, device=device, dtype=dtype, generator=g)
    t = torch.rand(args.batch, device=device, generator=g)
    if args.train == "frozen":
        x.requires_grad_(True)

    def step() -> None:
        out = decoder(x, t, t, enc, ctx)
        out.float().pow(2).mean().backward()
        decoder.zero_grad(set_to_none=True)
        x.grad = None

    for _ in range(args.warmup):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    step_s = (time.perf_counter() - start) / args.steps

    tokens = args.batch * math.ceil(args.frames / cfg.patch_size)
    flops = decoder_forward_flops(cfg, args.batch, args.frames, args.cond_len) * (3 if args.train == "full" else 2)
    gemm_size = args.gemm_size or (8192 if device.type == "cuda" else 2048)
    peak_flops = measure_gemm_peak(device, dtype, gemm_size, repeats=20 if device.type == "cuda" else 5)
    peak_mem = peak_memory_bytes(device)
    result = {
        "config": args.config, "params_decoder": sum(p.numel() for p in decoder.parameters()),
        "device": str(device), "dtype": args.dtype, "train": args.train, "batch": args.batch,
        "frames": args.frames, "tokens": tokens, "cond_len": args.cond_len, "checkpointing": args.checkpointing,
        "step_s": step_s, "tokens_per_s": tokens / step_s, "peak_mem_gib": peak_mem / 2**30,
        "rss_before_gib": rss_before / 2**30 if device.type == "cpu" else None,
        "flops_per_step": flops, "achieved_tflops": flops / step_s / 1e12,
        "gemm_peak_tflops": peak_flops / 1e12, "share_of_gemm_peak": flops / step_s / peak_flops,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"decoder {args.config} ({result['params_decoder'] / 1e6:.1f} M params), {args.train} backward, "
          f"{args.dtype} on {device} ({torch.get_num_threads()} threads), batch {args.batch} x {args.frames} frames "
          f"= {tokens} tokens, condition {args.cond_len}, checkpointing {args.checkpointing}")
    print(f"  step (fwd+bwd)    {step_s * 1000:10.1f} ms")
    print(f"  tokens/s          {result['tokens_per_s']:10.1f}")
    mem_kind = "peak allocated" if device.type == "cuda" else "process peak RSS"
    print(f"  {mem_kind:<17} {result['peak_mem_gib']:10.3f} GiB")
    print(f"  analytic FLOPs    {flops / 1e12:10.3f} TFLOP/step")
    print(f"  achieved          {result['achieved_tflops']:10.3f} TFLOP/s")
    print(f"  GEMM peak ({gemm_size})  {result['gemm_peak_tflops']:8.3f} TFLOP/s  -> "
          f"{100 * result['share_of_gemm_peak']:.1f} % of it")


if __name__ == "__main__":
    main()
