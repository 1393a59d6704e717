"""Which device and compute dtype a job runs on: one rule for training, generation and auditions."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from acetune.config import Precision
from acetune.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """"auto" is the first CUDA GPU when there is one, else the CPU; a name that cannot work is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", fix="use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: CUDA is not available on this machine",
                              fix="use auto or cpu, or install a CUDA build of torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)",
                              fix="use cuda:0 .. cuda:N-1, or auto")
    return device


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """"auto" is bf16 on CUDA (fp16 where bf16 is missing), fp16 on MPS, fp32 on the CPU."""
    if precision == Precision.AUTO:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    dtype = {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[precision]
    if device.type == "cpu" and dtype != torch.float32:
        raise ConfigError(f"precision {precision.value} on the CPU is not supported (bf16 matmuls are "
                          "hundreds of times slower there)", fix="use fp32 or auto precision on the CPU")
    return dtype


def cuda_indices(device: torch.device) -> list[int]:
    """The CUDA device index a forked RNG must cover ([] on the CPU), so no other GPU's stream moves."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def forked_rng(device: torch.device):
    """Draws inside leave the global CPU (and this device's) random state as it was."""
    return torch.random.fork_rng(devices=cuda_indices(device))


def mixed_precision(device: torch.device, dtype: torch.dtype):
    """Autocast to `dtype` (fp32 master weights meet bf16/fp16 activations), or nothing for fp32."""
    return nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)
