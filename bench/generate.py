"""Generation benchmark: sampler time (turbo 8 steps; base with CFG) and VAE decode time, as real-time factors.

Run:  python bench/generate.py --config small --seconds 10                 (CPU, fp32)
      python bench/generate.py --config 2b --seconds 60 --device cuda --dtype bf16

The DiT is a random model of a named config; the VAE is `AutoencoderOobleck` with the official
ACE-Step configuration (spec model.md §6, random weights), so decode time is the real one.
Real-time factor = audio seconds / wall seconds (above 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acetune.model import build_model, named_config  # noqa: E402
from acetune.model.acestep import Condition  # noqa: E402
from acetune.model.sampling import SamplerSettings, initial_noise, sample  # noqa: E402
from acetune.model.vae import decode_latents  # noqa: E402
from acetune.model.weights import parse_dtype  # noqa: E402

OFFICIAL_VAE = dict(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 6, 10], channel_multiples=[1, 2, 4, 8, 16],
                    decoder_channels=128, decoder_input_channels=64, audio_channels=2, sampling_rate=48000)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--condition", type=int, default=300, help="condition tokens")
    parser.add_argument("--base-steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    device, dtype = torch.device(args.device), parse_dtype(args.dtype)

    config = named_config(args.config)
    model = build_model(config).to(device, dtype).eval().requires_grad_(False)
    frames = round(args.seconds * 25)
    channels = config.audio_acoustic_hidden_dim
    g = torch.Generator().manual_seed(0)
    condition = Condition(torch.randn(1, args.condition, config.condition_hidden_size, generator=g).to(device, dtype),
                          torch.ones(1, args.condition, dtype=torch.bool, device=device),
                          torch.randn(1, frames, 2 * channels, generator=g).to(device, dtype))
    noise = initial_noise(1, frames, channels, 0)
    turbo = SamplerSettings.for_variant("turbo")
    base = SamplerSettings.for_variant("base", steps=args.base_steps)
    turbo_s = timed(lambda: sample(model, noise, condition, turbo), device, args.repeats)
    base_s = timed(lambda: sample(model, noise, condition, base), device, args.repeats)

    from diffusers import AutoencoderOobleck

    vae = AutoencoderOobleck(**OFFICIAL_VAE).to(device, dtype).eval().requires_grad_(False)
    latents = torch.randn(1, frames, 64, generator=g)
    decode_s = timed(lambda: decode_latents(vae, latents), device, args.repeats)
    result = {
        "config": args.config, "params_dit_M": round(sum(p.numel() for p in model.decoder.parameters()) / 1e6, 1),
        "audio_s": args.seconds, "device": str(device), "dtype": args.dtype,
        "turbo_8_steps_s": round(turbo_s, 3), "turbo_rtf": round(args.seconds / turbo_s, 2),
        f"base_{args.base_steps}_steps_cfg_s": round(base_s, 3), "base_rtf": round(args.seconds / base_s, 2),
        "vae_decode_s": round(decode_s, 3), "vae_rtf": round(args.seconds / decode_s, 2),
        "turbo_total_rtf": round(args.seconds / (turbo_s + decode_s), 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
