"""Would a LoRA path without PEFT's extra full-size tensors speed up the step? An A/B, fp32, CPU.

Run:  python bench/lora_path.py                 (750 and 1500 frames, 10 interleaved steps each)
      python bench/lora_path.py --frames 3000 --steps 6

PEFT's LoRA linear computes base(x) + lora_B(lora_A(x)) * scaling: a full-size product, a
full-size multiply and a full-size add in forward, and their mirror in backward. The candidate
here is one autograd function: the base product, then the low-rank update added in place with
`addmm_` (scaling folded in), and the input gradient accumulated the same way. Both paths train
acetune's decoder (bench/vs_reference.py's `small` setup, LoRA rank 16 on q/k/v/o of self- and
cross-attention, AdamW); steps alternate between the two in one process. The first step of each
path is checked to give the same loss (the products are the same, summed in another order).

Measured on the 2-core CI machine (bench/RESULTS.md): 0.97x at 750 and 0.96x at 1500 frames,
inside the machine's noise, so acetune keeps PEFT's forward.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from peft.tuners.lora import Linear as LoraLinear

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vs_reference import Levers, build  # noqa: E402

SAME_LOSS_RTOL = 1e-5  # the same products in another summation order: ~1e-7 apart


class _FusedLora(torch.autograd.Function):
    """base(x) + scale * (x A^T) B^T for a frozen bias-free base, with no full-size temporaries."""

    @staticmethod
    def forward(ctx, x, weight, lora_a, lora_b, scale):
        rows = x.reshape(-1, x.shape[-1])
        low = torch.mm(rows, lora_a.t())
        out = torch.mm(rows, weight.t()).addmm_(low, lora_b.t(), alpha=scale)
        ctx.save_for_backward(rows, low, weight, lora_a, lora_b)
        ctx.scale, ctx.shape = scale, x.shape
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        rows, low, weight, lora_a, lora_b = ctx.saved_tensors
        grad = grad.reshape(-1, grad.shape[-1])
        d_low = torch.mm(grad, lora_b).mul_(ctx.scale)
        d_x = torch.mm(grad, weight).addmm_(d_low, lora_a)
        return d_x.view(ctx.shape), None, torch.mm(d_low.t(), rows), torch.mm(grad.t(), low).mul_(ctx.scale), None


def fused_forward(self: LoraLinear, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    name = self.active_adapters[0]
    return _FusedLora.apply(x, self.base_layer.weight, self.lora_A[name].weight, self.lora_B[name].weight,
                            self.scaling[name])


def compare(frames: int, steps: int) -> str:
    peft_forward = LoraLinear.forward
    paths = {"peft": peft_forward, "fused": fused_forward}
    sides = {name: build("acetune", frames, Levers(False), torch.device("cpu"), torch.float32) for name in paths}
    losses = {}
    for name, side in sides.items():  # first step: warm-up, and the same loss from the same weights
        LoraLinear.forward = paths[name]
        losses[name] = side.step()
    times: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for step in range(steps):
            for name in (paths if step % 2 == 0 else reversed(list(paths))):
                LoraLinear.forward = paths[name]
                start = time.perf_counter()
                sides[name].step()
                times[name].append(time.perf_counter() - start)
    finally:
        LoraLinear.forward = peft_forward
    same = abs(losses["fused"] - losses["peft"]) <= SAME_LOSS_RTOL * abs(losses["peft"])
    ratios = [a / b for a, b in zip(times["fused"], times["peft"])]
    return (f"{frames} frames: fused / PEFT step {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}); medians {1000 * statistics.median(times['fused']):.0f} / "
            f"{1000 * statistics.median(times['peft']):.0f} ms; first losses {'equal' if same else 'DIFFER'} "
            f"({losses['fused']:.6f} / {losses['peft']:.6f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[750, 1500])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per path, interleaved")
    args = parser.parse_args()
    for frames in args.frames:
        print(compare(frames, args.steps), flush=True)


if __name__ == "__main__":
    main()
