"""Which device and compute dtype a job runs on: one rule for training, generation and auditions."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from acetune.config import Precision
from acetune.errors import ConfigError

USABLE_DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """"auto" is the first CUDA GPU, else Apple's MPS, else the CPU; a name that cannot work is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", fix="use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in USABLE_DEVICE_TYPES:  # meta holds shapes but no data: every weight read "fails"
        raise ConfigError(f"device {name!r} cannot run acetune: it is not a CPU, a CUDA GPU or Apple's MPS",
                          fix="use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cpu":
        return torch.device("cpu")  # "cpu:0" names the same device; safetensors refuses the index
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: Apple's MPS is not available on this machine",
                          fix="use auto or cpu (mps needs Apple silicon and a torch build with MPS)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: CUDA is not available on this machine",
                              fix="use auto or cpu, or install a CUDA build of torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)",
                              fix="use cuda:0 .. cuda:N-1, or auto")
    return device


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """"auto" is bf16 on CUDA (fp16 where bf16 is missing), fp32 on MPS and the CPU (bf16 there on request,
    where the CPU has bf16 units: `cpu_has_bf16_units`).

    Never fp16 by default on MPS: this model is known to give NaN there in fp16.
    """
    if precision == Precision.AUTO:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    dtype = precision_dtype(precision)
    if device.type == "cpu" and dtype == torch.float16:
        raise ConfigError("precision fp16 on the CPU is not supported (no fp16 autocast kernels there)",
                          fix="use bf16 (on a CPU with AVX512-BF16 or AMX), fp32 or auto")
    if device.type == "cpu" and dtype == torch.bfloat16 and not cpu_has_bf16_units():
        raise ConfigError("precision bf16: this CPU has no bf16 matrix units (AVX512-BF16 or AMX), so bf16 is "
                          "emulated and slower than fp32", fix="use fp32 or auto precision on this CPU")
    return dtype


def cpu_has_bf16_units() -> bool:
    """Whether the CPU multiplies bf16 natively (AVX512-BF16 / AMX), as oneDNN reports it.

    Measured on a Xeon with AMX (2 cores, torch 2.13, 2048^2 matmul): fp32 90-95 GFLOP/s, bf16
    264-606 GFLOP/s. Without those units bf16 is emulated and slower than fp32. "auto" stays fp32
    on every CPU: bf16 training changes the numerics, so it is a choice the user makes.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def precision_dtype(precision: Precision) -> torch.dtype:
    """The dtype an explicit precision names (auto depends on the device: see `resolve_precision`)."""
    if precision == Precision.AUTO:
        raise ValueError("auto precision depends on the device: use resolve_precision")
    return {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[precision]


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
