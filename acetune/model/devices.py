"""Which device and compute dtype a job runs on: one rule for training, generation and auditions."""

from __future__ import annotations

import torch

from acetune.config import Precision
from acetune.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """"auto" is the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    return torch.device(name)


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """"auto" is bf16 on CUDA (fp16 where bf16 is missing), fp16 on MPS, fp32 on the CPU."""
    if precision == Precision.AUTO:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    dtype = {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[precision]
    if device.type == "cpu" and dtype != torch.float32:
        raise ConfigError(f"loop.precision = {precision.value} on the CPU is not supported (bf16 matmuls are "
                          "hundreds of times slower there)", fix="use loop.precision = fp32 or auto on the CPU")
    return dtype
