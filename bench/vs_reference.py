"""acetune's decoder against the reference implementation, side by side: LoRA training step and turbo render.

Run:  python bench/vs_reference.py                          (CPU, fp32: 750/1500/3000 frames, checkpointing off/on)
      python bench/vs_reference.py --recompute-mlp          (acetune with loop.recompute_mlp)
      python bench/vs_reference.py --recompute-mlp --against plain   (that lever's cost: acetune with / without)
      python bench/vs_reference.py --frames 1500 --pairs 5 --checkpointing off
      python bench/vs_reference.py --device cuda --dtype bf16 (GPU)

The reference is diffusers' `AceStepTransformer1DModel` (bit-identical to the official decoder in
fp32, tests/model/test_diffusers_parity.py) with PEFT LoRA, holding the same weights as acetune's
decoder. Both sides get the same LoRA (rank 16, alpha 16, q/k/v/o of self- and cross-attention,
through PEFT on both sides), the same inputs, the same flow-matching loss and AdamW. Config
`small` (hidden 512, 8 layers, 8/4 heads x 64, FFN 1536, window 128), batch 1, condition 300.

Reported as acetune / reference ratios (median over pairs, with min-max):
- step: one forward+backward+AdamW step, timed in interleaved pairs (ABBA order) in one process;
- tensor peak: the most bytes held by tensors created during one step (activations, gradients,
  temporaries; the weights and AdamW state are already there), from a dispatch-mode tracker;
- RSS peak: each side alone in a fresh child process: after a first step (and compile), the freed
  heap is returned to the OS (malloc_trim) and the peak is reset; the peak resident set of 3 more
  steps above the resident set then (imports, weights, AdamW state and compiled code excluded);
- render: 8 turbo steps (no grad) of each side at the same frames.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acetune.adapters import attach  # noqa: E402
from acetune.config import AdapterConfig  # noqa: E402
from acetune.model import AttentionOptions  # noqa: E402
from acetune.model.acestep import AceStepModel, Condition  # noqa: E402
from acetune.model.compiled import compile_layers  # noqa: E402
from acetune.model.diffusers_config import component_configs  # noqa: E402
from acetune.model.diffusers_keys import module_to_diffusers  # noqa: E402
from acetune.model.initialization import init_weights  # noqa: E402
from acetune.model.sampling import SamplerSettings, sample, turbo_schedule  # noqa: E402
from acetune.model.tiny import named_config  # noqa: E402
from acetune.model.weights import parse_dtype  # noqa: E402

SIDES = ("acetune", "reference", "plain")  # plain: acetune without the acetune-only levers (an A/B of a lever)
RANK = 16
COND_LEN = 300


@dataclass(frozen=True)
class Levers:
    """How each side runs: checkpointing applies to both, the others are acetune's options."""

    checkpointing: bool
    compiled: bool = False  # loop.compile
    recompute_mlp: bool = False  # loop.recompute_mlp

    def flags(self) -> list[str]:
        """The command-line flags that give these levers (for the RSS child process)."""
        return ["--checkpointing", "on" if self.checkpointing else "off",
                *(["--compile"] if self.compiled else []), *(["--recompute-mlp"] if self.recompute_mlp else [])]


@dataclass
class Side:
    """One implementation ready to train: its decoder, a step function and a turbo render."""

    decoder: torch.nn.Module
    step: Callable[[], float]
    render: Callable[[], torch.Tensor]


def build(side: str, frames: int, levers: Levers, device: torch.device, dtype: torch.dtype) -> Side:
    config = named_config("small")
    model = init_weights(AceStepModel(config, AttentionOptions(honor_padding=True)), seed=0)
    decoder = model.decoder
    targets = [f"layers.{i}.{block}.{proj}" for i in range(config.num_hidden_layers)
               for block in ("self_attn", "cross_attn") for proj in ("q_proj", "k_proj", "v_proj", "o_proj")]
    if side == "plain":
        side, levers = "acetune", Levers(levers.checkpointing)
    if side == "acetune":
        attach(decoder, AdapterConfig(rank=RANK, alpha=float(RANK), dropout=0.0), seed=0)
        decoder.set_gradient_checkpointing(1.0 if levers.checkpointing else 0.0)
        decoder.set_mlp_recompute(levers.recompute_mlp)
        if levers.compiled:
            compile_layers(decoder)
        call = decoder
    else:
        decoder = _reference_transformer(model, targets)
        if levers.checkpointing:
            decoder.enable_gradient_checkpointing()

        def call(*args):
            return decoder(*args).sample
    decoder.to(device=device, dtype=dtype).train()
    for param in decoder.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    optimizer = torch.optim.AdamW([p for p in decoder.parameters() if p.requires_grad], lr=1e-4)
    inputs = _inputs(config, frames, device, dtype)

    def step() -> float:
        x0, noise, t, states, context = inputs
        x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * x0
        prediction = call(x_t, t, t, states, context)
        loss = (prediction.float() - (noise - x0).float()).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    def render() -> torch.Tensor:
        x0, noise, _, states, context = inputs
        with torch.no_grad():
            if side == "acetune":
                return sample(model.to(device=device, dtype=dtype), noise, Condition(states, torch.ones(
                    states.shape[:2], dtype=torch.bool, device=device), context), SamplerSettings.for_variant("turbo"))
            x = noise.float()
            schedule = turbo_schedule(3.0)
            for i, t in enumerate(schedule):
                v = call(x.to(dtype), t.expand(1).to(device), t.expand(1).to(device), states, context).float()
                x = x - v * (t - (schedule[i + 1] if i + 1 < len(schedule) else 0.0))
            return x

    return Side(decoder, step, render)


def _reference_transformer(model: AceStepModel, targets: list[str]) -> torch.nn.Module:
    """diffusers' transformer holding the decoder's weights, with PEFT LoRA on the same modules."""
    import diffusers
    from peft import LoraConfig, inject_adapter_in_model

    values = component_configs(model.config, diffusers.__version__)["transformer"]
    transformer = diffusers.AceStepTransformer1DModel(**{k: v for k, v in values.items() if not k.startswith("_")})
    transformer.load_state_dict({module_to_diffusers(k): v for k, v in model.decoder.state_dict().items()}, strict=True)
    transformer.requires_grad_(False)
    names = [module_to_diffusers(name) for name in targets]
    torch.manual_seed(0)
    return inject_adapter_in_model(LoraConfig(r=RANK, lora_alpha=RANK, lora_dropout=0.0, target_modules=names),
                                   transformer)


def _inputs(config, frames: int, device: torch.device, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(1)
    c = config.audio_acoustic_hidden_dim

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    t = torch.rand(1, generator=gen).to(device=device, dtype=dtype)
    return randn(1, frames, c), randn(1, frames, c), t, randn(1, COND_LEN, config.condition_hidden_size), \
        randn(1, frames, 2 * c)


class TensorPeak(TorchDispatchMode):
    """Peak bytes of live tensor storages created while active (views share their base's storage).

    A storage first met as an op's input (a weight, AdamW state, the inputs) existed before and is
    never counted, even when a view of it (`weight.t()`) is an op's output.
    """

    def __init__(self, breakdown: bool = False) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.existing: dict[int, StorageWeakRef] = {}
        self.current = self.peak = 0
        self.breakdown = breakdown  # also keep what was live at the peak, by the op and shape that made it
        self.made_by: dict[int, str] = {}
        self.at_peak: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for tensor in tree_leaves((args, kwargs)):
            if isinstance(tensor, torch.Tensor):
                key = tensor.untyped_storage().data_ptr()
                if key not in self.live and key not in self.existing:
                    self.existing[key] = StorageWeakRef(tensor.untyped_storage())
        out = func(*args, **(kwargs or {}))
        for key, (ref, size) in list(self.live.items()):
            if ref.expired():
                self.current -= size
                del self.live[key]
        for key, ref in list(self.existing.items()):
            if ref.expired():
                del self.existing[key]
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                if key not in self.live and key not in self.existing:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
                    if self.breakdown:
                        self.made_by[key] = f"{func.__name__} -> {list(tensor.shape)}"
        if self.current > self.peak and self.breakdown:
            self.at_peak = Counter()
            for key, (_, size) in self.live.items():
                self.at_peak[self.made_by.get(key, "?")] += size
        self.peak = max(self.peak, self.current)
        return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def rss_bytes() -> int:
    """This process's peak RSS (VmHWM; ru_maxrss would carry the forking parent's peak across exec)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def reset_peak_rss() -> None:
    """Restart VmHWM from the current RSS (Linux >= 4.0: writing 5 to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def rss_child(side: str, frames: int, levers: Levers) -> dict[str, int]:
    """Run one side alone in a fresh interpreter; its peak RSS above its RSS once built."""
    command = [sys.executable, __file__, "--rss-side", side, "--frames", str(frames), *levers.flags()]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def rss_side(side: str, frames: int, levers: Levers) -> None:
    built = build(side, frames, levers, torch.device("cpu"), torch.float32)
    built.step()  # AdamW state exists from here on (and compiled code)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand the first step's freed heap back, so RSS is what is live
    reset_peak_rss()
    ready = current_rss_bytes()
    for _ in range(3):
        built.step()
    print(json.dumps({"ready": ready, "peak": rss_bytes()}))


def ratio_summary(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def compare(frames: int, levers: Levers, pairs: int, device: torch.device, dtype: torch.dtype,
            rss: bool, against: str = "reference", breakdown: bool = False) -> dict[str, object]:
    both = ("acetune", against)
    sides = {side: build(side, frames, levers, device, dtype) for side in both}
    first = {side: timed(sides[side].step, device) for side in both}  # warm-up (and compile); creates AdamW state
    times: dict[str, list[float]] = {side: [] for side in both}
    for pair in range(pairs):
        order = both if pair % 2 == 0 else both[::-1]
        for side in order:
            times[side].append(timed(sides[side].step, device))
    peaks, at_peak = {}, {}
    for side in both if not levers.compiled else ():  # compiled kernels allocate below the dispatcher: RSS only
        with TensorPeak(breakdown) as tracker:
            sides[side].step()
        peaks[side] = tracker.peak
        at_peak[side] = {made: round(size / 2**20, 2) for made, size in tracker.at_peak.most_common(12)}
    renders = {side: [] for side in both}
    for side in both:
        sides[side].render()  # warm-up (compiles the no-grad graph when compiled)
    for pair in range(max(1, pairs // 2)):
        for side in (both if pair % 2 == 0 else both[::-1]):
            renders[side].append(timed(sides[side].render, device))
    row: dict[str, object] = {
        "frames": frames, "checkpointing": levers.checkpointing, "compiled": levers.compiled,
        "recompute_mlp": levers.recompute_mlp,
        "first_step_s": {s: round(v, 1) for s, v in first.items()},
        "step_ms": {s: 1000 * statistics.median(v) for s, v in times.items()},
        "step_ratio": ratio_summary([a / b for a, b in zip(times["acetune"], times[against])]),
        "tensor_peak_mib": {s: v / 2**20 for s, v in peaks.items()},
        "against": against,
        "tensor_peak_ratio": f"{peaks['acetune'] / peaks[against]:.2f}x" if peaks else None,
        "render_ms": {s: 1000 * statistics.median(v) for s, v in renders.items()},
        "render_ratio": ratio_summary([a / b for a, b in zip(renders["acetune"], renders[against])]),
        **({"live_at_peak_mib": at_peak} if breakdown else {}),
    }
    if rss and device.type == "cpu":
        above = {side: rss_child(side, frames, levers) for side in both}
        row["rss_above_ready_mib"] = {s: (v["peak"] - v["ready"]) / 2**20 for s, v in above.items()}
        row["rss_peak_mib"] = {s: v["peak"] / 2**20 for s, v in above.items()}
        grown = {s: v["peak"] - v["ready"] for s, v in above.items()}
        row["rss_ratio"] = f"{grown['acetune'] / max(1, grown[against]):.2f}x"
    return row


def profile_table(frames: int, levers: Levers, device: torch.device, dtype: torch.dtype, against: str,
                  rows: int = 16) -> None:
    """Self time per op of one step on each side, side by side: where the two steps differ."""
    from torch.profiler import profile

    self_ms = {}
    for side in ("acetune", against):
        built = build(side, frames, levers, device, dtype)
        built.step()
        built.step()
        with profile() as prof:
            built.step()
        self_ms[side] = {e.key: e.self_cpu_time_total / 1000 for e in prof.key_averages()}
    ours, theirs = self_ms["acetune"], self_ms[against]
    ops = sorted(set(ours) | set(theirs), key=lambda op: -(ours.get(op, 0) + theirs.get(op, 0)))
    print(f"profile, {frames} frames: self ms per op  acetune / {against} "
          f"(totals {sum(ours.values()):.0f} / {sum(theirs.values()):.0f})")
    for op in ops[:rows]:
        print(f"  {op[:52]:52s} {ours.get(op, 0):8.0f} {theirs.get(op, 0):8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[750, 1500, 3000])
    parser.add_argument("--checkpointing", nargs="+", choices=("off", "on"), default=["off", "on"])
    parser.add_argument("--pairs", type=int, default=4, help="interleaved step pairs per row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--no-rss", action="store_true", help="skip the child-process RSS measurement")
    parser.add_argument("--compile", action="store_true", help="acetune's layers compiled (loop.compile = true)")
    parser.add_argument("--against", choices=SIDES[1:], default="reference",
                        help="the other side: the reference, or plain acetune without --compile/--recompute-mlp")
    parser.add_argument("--recompute-mlp", action="store_true",
                        help="acetune's MLPs keep only their input for backward (loop.recompute_mlp = true)")
    parser.add_argument("--peak-breakdown", action="store_true",
                        help="also list what is live at each side's tensor peak, by the op and shape that made it")
    parser.add_argument("--profile", action="store_true", help="also print each side's self time per op")
    parser.add_argument("--rss-side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_side:
        rss_side(args.rss_side, args.frames[0], Levers(args.checkpointing[0] == "on", args.compile, args.recompute_mlp))
        return
    device, dtype = torch.device(args.device), parse_dtype(args.dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device} {args.dtype}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for frames in args.frames:
        for mode in args.checkpointing:
            levers = Levers(mode == "on", args.compile, args.recompute_mlp)
            row = compare(frames, levers, args.pairs, device, dtype, not args.no_rss, args.against,
                          args.peak_breakdown)
            print(json.dumps(row), flush=True)
            if args.profile:
                profile_table(frames, levers, device, dtype, args.against)


if __name__ == "__main__":
    main()
