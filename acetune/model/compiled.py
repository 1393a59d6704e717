"""`torch.compile` of the decoder's layers, with a clear fallback to eager where it cannot run.

Each DiT layer is compiled in place (`nn.Module.compile`: its state-dict keys, adapters and
checkpointing stay as they are). Inductor fuses the elementwise chains around the matrix
multiplies (RMSNorm, rotary, adaLN modulation, LoRA scaling) and its partitioner recomputes cheap
elementwise results in backward instead of saving them: faster steps and less activation memory
after a one-off compile of tens of seconds (bench/vs_reference.py --compile, bench/RESULTS.md).
"""

from __future__ import annotations

import torch
from torch import nn


def toolchain_problem(device: torch.device) -> str | None:
    """Why compiled code cannot run on `device` here (e.g. no C++ compiler for CPU kernels), or None.

    Compilation is lazy: a missing toolchain would otherwise surface as a traceback at the first
    training step. A two-element function is compiled and run here instead (a few seconds).
    """
    try:
        probe = torch.compile(lambda x: x * 2 + 1, dynamic=False)
        probe(torch.ones(2, device=device))
    except Exception as err:  # noqa: BLE001 - any failure means the same thing: stay eager
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".strip()
    return None


def compile_layers(decoder: nn.Module) -> int:
    """Compile each of `decoder.layers` in place; returns how many."""
    for layer in decoder.layers:
        layer.compile()
    return len(decoder.layers)
