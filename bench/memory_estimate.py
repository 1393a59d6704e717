"""Check `estimate_memory` against measured peaks of real training steps on the CPU.

Run:  python3 bench/memory_estimate.py            (all cases, several minutes on 2 cores)
      python3 bench/memory_estimate.py small 750 0  (one case, prints its JSON)

Each case runs twice, each time in a fresh subprocess that builds the decoder + LoRA r64 +
AdamW and then runs two training steps shaped like the trainer's (`_micro_step`: batch and
draws, `velocity_loss`, backward; then clipping, the optimizer step, `zero_grad`):

* measured: the peak of the bytes held by live tensors, from the CPU allocator's own
  allocation and free records (`torch.profiler` with `profile_memory`), minus what was live
  when the steps began; the CPU counterpart of CUDA's `max_memory_allocated`.
* RSS: the process's peak resident memory minus the resident memory after setup, in a run
  without the profiler. It also counts memory that no tensor holds: pages glibc keeps after
  large tensors are freed (its mmap threshold grows after the first large free, so later
  tensors come from the heap and stay resident), library code and thread pools touched by the
  first step, kernel workspaces. It is reported, not compared.

The prediction is the estimate's gradients + optimizer states + activations (the weights are
resident before the steps), fp32, batch 1, 300 condition tokens, `optim.grad_accum` 1.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [  # config, frames, checkpointing ratio
    ("small", 750, 0.0), ("small", 1500, 0.0), ("small", 1500, 0.5), ("small", 1500, 1.0),
    ("mid", 750, 0.0), ("mid", 750, 1.0), ("mid", 1500, 0.5),
]
CONDITION = 300
STEPS = 2


def current_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def tensor_peak(profiler) -> int:
    """Peak of the running sum of the allocator's allocation (+) and free (-) records."""
    records = sorted((event.start_ns(), event.nbytes()) for event in profiler.profiler.kineto_results.events()
                     if event.name() == "[memory]")
    live = peak = 0
    for _, nbytes in records:
        live += nbytes
        peak = max(peak, live)
    return peak


def measure(config_name: str, frames: int, ratio: float, profiled: bool) -> dict:
    import torch

    from acetune.adapters import attach
    from acetune.config import AdapterConfig, DataConfig, LoopConfig, OptimConfig, RunConfig
    from acetune.model import AttentionOptions, build_model, named_config
    from acetune.train.memory import estimate_memory
    from acetune.train.objective import DEFAULT_CFG_RATIO, draw, timesteps_from, velocity_loss
    from acetune.train.optim import build_optimizer

    torch.set_num_threads(2)
    model_config = named_config(config_name)
    run = RunConfig(data=DataConfig(crop_frames=frames), adapter=AdapterConfig(rank=64, alpha=128.0, dropout=0.0),
                    loop=LoopConfig(gradient_checkpointing=ratio), optim=OptimConfig(grad_accum=1))
    estimate = estimate_memory(run, model_config, frames=frames, condition=CONDITION, dtype=torch.float32)
    model = build_model(model_config, AttentionOptions(honor_padding=False), meta=True)
    decoder = model.decoder.to_empty(device="cpu")
    with torch.no_grad():
        for name, param in decoder.named_parameters():
            param.fill_(1.0) if name.endswith("norm.weight") else param.normal_(0.0, 0.02)
    null_embedding = torch.randn(1, 1, model_config.condition_hidden_size)
    adapter = attach(decoder, run.adapter, seed=0)
    decoder.set_gradient_checkpointing(ratio)
    params = list(adapter.trainable_parameters.values())
    optimizer = build_optimizer(adapter.param_groups(1e-4, 0.01), run.optim, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    channels = model_config.audio_acoustic_hidden_dim

    def step() -> None:
        x0 = torch.randn(1, frames, channels)
        context = torch.randn(1, frames, 2 * channels)
        states = torch.randn(1, CONDITION, model_config.condition_hidden_size)
        draws = draw(1, x0.shape, generator)
        t = timesteps_from(draws, discrete=False, mu=model_config.timestep_mu, sigma=model_config.timestep_sigma)
        out = velocity_loss(decoder, null_embedding, x0, torch.ones(1, frames), states, torch.ones(1, CONDITION),
                            context, draws, t=t, cfg_ratio=DEFAULT_CFG_RATIO)
        (out.loss.float() / run.optim.grad_accum).backward()
        torch.nn.utils.clip_grad_norm_(params, run.optim.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    setup = current_rss()
    if profiled:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            for _ in range(STEPS):
                step()
        measured = tensor_peak(prof)
    else:
        for _ in range(STEPS):
            step()
        measured = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - setup
    predicted = estimate.gradients + estimate.optimizer + estimate.activations
    return {"config": config_name, "frames": frames, "checkpointing": ratio, "measured": measured,
            "predicted": predicted, "profiled": profiled}


def run_case(name: str, frames: int, ratio: float, profiled: bool) -> dict:
    command = [sys.executable, __file__, name, str(frames), str(ratio)] + (["--rss"] if not profiled else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) >= 4:
        profiled = "--rss" not in sys.argv[4:]
        print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), profiled)))
        return
    print("| config | frames | checkpointing | measured MiB | predicted MiB | error | RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, frames, ratio in CASES:
        row = run_case(name, frames, ratio, profiled=True)
        rss = run_case(name, frames, ratio, profiled=False)["measured"]
        error = (row["predicted"] - row["measured"]) / row["measured"]
        print(f"| {name} | {frames} | {ratio:g} | {row['measured'] / 2**20:.1f} | {row['predicted'] / 2**20:.1f} "
              f"| {100 * error:+.1f} % | {rss / 2**20:.1f} |", flush=True)


if __name__ == "__main__":
    main()
