"""Check `estimate_memory` against measured peaks of real training steps on the CPU.

Run:  python bench/memory_estimate.py

Each case runs in a fresh subprocess: build the decoder + LoRA + AdamW, record the resident
memory, run two training steps, and read the process's peak resident memory. The measured
step memory (peak minus the resident memory after setup) is compared with the estimate's
gradients + optimizer states + activations (the weights are already resident after setup).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [  # config, frames, checkpointing ratio
    ("small", 750, 0.0), ("small", 1500, 0.0), ("small", 1500, 1.0), ("mid", 750, 0.0), ("mid", 1500, 0.5),
]


def current_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def measure(config_name: str, frames: int, ratio: float) -> dict:
    import torch

    from acetune.adapters import attach
    from acetune.config import AdapterConfig, DataConfig, LoopConfig, OptimConfig, RunConfig
    from acetune.model import AttentionOptions, build_model, named_config
    from acetune.train.memory import estimate_memory
    from acetune.train.optim import build_optimizer

    torch.set_num_threads(2)
    model_config = named_config(config_name)
    run = RunConfig(data=DataConfig(crop_frames=frames), adapter=AdapterConfig(rank=64, alpha=128.0, dropout=0.0),
                    loop=LoopConfig(gradient_checkpointing=ratio))
    estimate = estimate_memory(run, model_config, frames=frames, condition=300, dtype=torch.float32)
    decoder = build_model(model_config, AttentionOptions(honor_padding=False), meta=True).decoder.to_empty(device="cpu")
    with torch.no_grad():
        for name, param in decoder.named_parameters():
            param.fill_(1.0) if name.endswith("norm.weight") else param.normal_(0.0, 0.02)
    adapter = attach(decoder, run.adapter, seed=0)
    decoder.set_gradient_checkpointing(ratio)
    optimizer = build_optimizer(adapter.param_groups(1e-4, 0.01), OptimConfig(), torch.device("cpu"))
    x = torch.randn(1, frames, model_config.audio_acoustic_hidden_dim)
    context = torch.randn(1, frames, 2 * model_config.audio_acoustic_hidden_dim)
    states = torch.randn(1, 300, model_config.condition_hidden_size)
    t = torch.rand(1)
    setup = current_rss()
    for _ in range(2):
        decoder(x, t, t, states, context).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    predicted = estimate.gradients + estimate.optimizer + estimate.activations
    return {"config": config_name, "frames": frames, "checkpointing": ratio, "measured": peak - setup,
            "predicted": predicted}


def main() -> None:
    if len(sys.argv) == 4:
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))))
        return
    print(f"{'config':<8}{'frames':>7}{'ckpt':>6}{'measured MiB':>14}{'predicted MiB':>15}{'error':>8}")
    for name, frames, ratio in CASES:
        out = subprocess.run([sys.executable, __file__, name, str(frames), str(ratio)], capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        error = (row["predicted"] - row["measured"]) / row["measured"]
        print(f"{name:<8}{frames:>7}{ratio:>6}{row['measured'] / 2**20:>14.1f}{row['predicted'] / 2**20:>15.1f}"
              f"{100 * error:>7.1f}%")


if __name__ == "__main__":
    main()
