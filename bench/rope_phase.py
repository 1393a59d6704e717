"""How far apart the two RoPE conventions put the rotary angles of the real models, by song length.

The official app casts the model to bf16 (`model.to(bf16)`), which rounds the rotary `inv_freq`
to bf16 (`loop.rope_dtype = "model"`); fp32 frequencies (`"fp32"`) give other angles, and the gap
grows with the position. The DiT sees one position per patch: 25 latent frames/s, patch size 2,
so 12.5 positions per second.

    python3 bench/rope_phase.py            # 2b and xl, at 30 / 60 / 120 / 240 / 600 s
"""

from __future__ import annotations

import argparse
import math

import torch

from acetune.config.schema import RopeDtype
from acetune.model.layers import RotaryEmbedding
from acetune.model.tiny import named_config

LATENT_FRAMES_PER_SECOND = 25


def phase_gap(config_name: str, seconds: float) -> dict[str, float]:
    """Largest and mean |angle(fp32) - angle(bf16 frequencies)| at the last DiT position, and the cos gap."""
    config = named_config(config_name)
    positions = int(seconds * LATENT_FRAMES_PER_SECOND) // config.patch_size
    cpu = torch.device("cpu")
    rope = RotaryEmbedding(config.head_dim, config.rope_theta, RopeDtype.MODEL)
    fp32 = rope.inverse_frequencies(cpu, torch.float32).double()
    rounded = rope.inverse_frequencies(cpu, torch.bfloat16).double()
    gap = (fp32 - rounded).abs() * (positions - 1)
    model_cos, _ = rope(positions, cpu, torch.bfloat16)
    fp32_cos, _ = RotaryEmbedding(config.head_dim, config.rope_theta, RopeDtype.FP32)(positions, cpu, torch.bfloat16)
    return {"positions": positions, "max_rad": gap.max().item(), "mean_rad": gap.mean().item(),
            "pairs_over_half_pi": int((gap > math.pi / 2).sum()), "pairs": gap.numel(),
            "max_cos_gap": (model_cos.double() - fp32_cos.double()).abs().max().item(),
            "head_dim": config.head_dim, "theta": config.rope_theta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["2b", "xl"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[30, 60, 120, 240, 600])
    args = parser.parse_args()
    print("| config | head_dim, theta | song | DiT positions | max phase gap | mean phase gap "
          "| frequency pairs > pi/2 off | max abs(cos gap) (bf16 tables) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.config:
        for seconds in args.seconds:
            r = phase_gap(name, seconds)
            print(f"| {name} | {r['head_dim']}, {r['theta']:g} | {seconds:g} s | {r['positions']} | "
                  f"{r['max_rad']:.3f} rad | {r['mean_rad']:.3f} rad | {r['pairs_over_half_pi']} of {r['pairs']} | "
                  f"{r['max_cos_gap']:.3f} |")


if __name__ == "__main__":
    main()
