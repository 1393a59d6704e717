"""Multi-process data parallelism (torchrun / accelerate launch): DDP over the decoder, or FSDP2 for a
full fine-tune (`sharding.py`).

Every rank builds the same epoch plan from the same seed and takes its slice of each global
batch; the random draws (noise, timesteps, CFG dropout) are made for the whole global batch on
every rank and sliced the same way, so N processes with batch b compute what one process with
batch N*b computes. Gradients are synchronised only on the last micro-step of an accumulation
group; rank 0 alone logs and saves (with FSDP every rank takes part in gathering what it saves).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> DistInfo:
    """Read the torchrun variables; initialise the process group (gloo on CPU, plus nccl on CUDA) if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
    if not dist.is_initialized():
        # gloo also on CUDA machines: the loop's small reductions (losses, flags) are CPU tensors
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=world)
    return info


def device_for(info: DistInfo, requested: torch.device) -> torch.device:
    """Each rank on its own GPU."""
    if info.enabled and requested.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return requested


def wrap(decoder: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    if not info.enabled:
        return decoder
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(decoder, device_ids=ids)


def no_sync(module: torch.nn.Module, skip: bool):
    """Skip the gradient all-reduce (DDP) or reduce-scatter (FSDP) on accumulation micro-steps."""
    if skip and hasattr(module, "set_requires_gradient_sync"):
        return _fsdp_accumulating(module)
    if skip and hasattr(module, "no_sync"):
        return module.no_sync()
    return nullcontext()


@contextmanager
def _fsdp_accumulating(module):
    """FSDP2: keep this micro-step's gradients unreduced and its gathered weights until the group's last."""
    module.set_requires_gradient_sync(False)
    module.set_reshard_after_backward(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)
        module.set_reshard_after_backward(True)


def mean_across(value: float, info: DistInfo) -> float:
    if not info.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / info.world_size


def sum_across(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise sum over ranks (a copy; the input is left as it is)."""
    if not info.enabled:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
