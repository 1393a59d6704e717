"""FSDP2 for full decoder fine-tunes under data parallelism: weights, gradients and AdamW states sharded.

A full fine-tune under torchrun (adapter.kind = full, WORLD_SIZE > 1, loop.fsdp = true, AdamW) is
sharded with `fully_shard` instead of replicated with DDP: each DiT layer is one FSDP unit and the
root (embeddings, projections, output norm and table) the last, so a rank holds 1/N of the fp32
master weights, gradients and optimizer states plus about one gathered layer at a time. Adapters
(LoRA, DoRA, LoKr, LoHa) keep DDP: their trainable state is small and their frozen base is shared.
So do the other optimizers (8-bit AdamW, Adafactor, Prodigy), whose updates are not written for
sharded tensors. Auditions are not rendered while the decoder is sharded (rank 0 cannot run it alone).

The computation is the one of DDP and of one process with the global batch: the loop slices each
global batch and its random draws exactly as before, and the reduce-scatter averages gradients over
the ranks as DDP's all-reduce does. Masters stay fp32; on CUDA with bf16/fp16 compute the weights
are gathered in that dtype and gradients reduced in fp32 (`MixedPrecisionPolicy`); CPU runs fp32.
Accumulation micro-steps neither reduce-scatter gradients nor reshard weights (`distributed.no_sync`).

Checkpoints keep the single-process format: model and optimizer states are gathered with
`torch.distributed.checkpoint.state_dict` (full, CPU-offloaded, so rank 0 alone holds them), the
optimizer state is re-keyed from parameter names to the indices `Optimizer.state_dict` uses, and a
resume sets them back with the matching `set_*` calls. Every rank takes part in every gather.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

import torch

from acetune.config import AdapterKind, OptimizerKind, RunConfig
from acetune.errors import ModelLoadError
from acetune.train.distributed import DistInfo
from acetune.train.ema import EMA


def uses_fsdp(config: RunConfig, info: DistInfo) -> bool:
    """Shard this run? Data-parallel full fine-tunes with AdamW, unless loop.fsdp is off."""
    return (info.enabled and config.loop.fsdp and config.adapter.kind == AdapterKind.FULL
            and config.optim.optimizer == OptimizerKind.ADAMW)


def shard_decoder(decoder: torch.nn.Module, info: DistInfo, device: torch.device, compute_dtype: torch.dtype) -> None:
    """`fully_shard` every DiT layer, then the root, in place (call before building the optimizer)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if device.type == "cuda":
        torch.cuda.set_device(device)
    mesh = init_device_mesh(device.type, (info.world_size,))
    low_precision = device.type == "cuda" and compute_dtype in (torch.bfloat16, torch.float16)
    # Inputs keep their dtypes (the timesteps stay fp32, as under DDP); autocast picks each op's precision.
    policy = (MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32, cast_forward_inputs=False)
              if low_precision else MixedPrecisionPolicy())
    for layer in decoder.layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    # The root reshards after forward too (FSDP's default keeps it gathered for the backward): a forward
    # without backward (evaluation, under the EMA weights) would otherwise leave stale gathered weights
    # that the next training forward reuses.
    fully_shard(decoder, mesh=mesh, mp_policy=policy, reshard_after_forward=True)


def is_sharded(tensor) -> bool:
    return hasattr(tensor, "full_tensor")  # a DTensor


def replicated(tensor: torch.Tensor) -> torch.Tensor:
    """A plain tensor of a (replicated or partial) DTensor's full value; plain tensors pass through."""
    return tensor.full_tensor() if is_sharded(tensor) else tensor


def local_shard(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a sharded tensor (shares its storage); plain tensors pass through."""
    return tensor.to_local() if is_sharded(tensor) else tensor


def drop_unsynced_gradients(decoder: torch.nn.Module) -> None:
    """Forget the gradients FSDP holds unsharded between no-sync micro-steps, then reshard.

    `optimizer.zero_grad` reaches only the sharded parameters; a micro-batch group dropped for a
    non-finite loss must also lose what FSDP accumulated for it (FSDP2 has no public call for this).
    """
    from torch.distributed.fsdp import FSDPModule

    for module in decoder.modules():
        if not isinstance(module, FSDPModule):
            continue
        state = module._get_fsdp_state()
        groups = getattr(state, "_fsdp_param_groups", None) or [getattr(state, "_fsdp_param_group", None)]
        for group in filter(None, groups):
            for fsdp_param in group.fsdp_params:
                fsdp_param.unsharded_accumulated_grad = None
                if hasattr(fsdp_param, "_unsharded_param"):
                    fsdp_param._unsharded_param.grad = None
        module.reshard()


def _full_options(**extra):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **extra)


def gathered_model_state(decoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The decoder's full state dict on rank 0 (CPU), {} elsewhere; every rank must call it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(decoder, options=_full_options(cpu_offload=True))


def gathered_trainable_state(decoder: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """The trainable tensors `names`, gathered (complete on rank 0 only)."""
    full = gathered_model_state(decoder)
    return {name: full[name] for name in names} if full else {}


def load_sharded_trainable_state(decoder: torch.nn.Module, names: list[str], state: dict[str, torch.Tensor]) -> None:
    """Each rank keeps its slice of the full tensors in `state`."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    wanted = set(names)
    missing, unexpected = sorted(wanted - set(state)), sorted(set(state) - wanted)
    if missing or unexpected:
        raise ModelLoadError(f"trainable state does not match the full fine-tune: {len(missing)} missing "
                             f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})",
                             fix="restore state saved by a run with the same adapter config")
    set_model_state_dict(decoder, dict(state), options=_full_options(strict=False))


def _names_by_index(decoder: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Parameter names in `Optimizer.state_dict` index order (group by group, parameter by parameter)."""
    names = {id(param): name for name, param in decoder.named_parameters()}
    return [names[id(param)] for group in optimizer.param_groups for param in group["params"]]


def gathered_optimizer_state(decoder: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """`optimizer.state_dict()` in its index-keyed form, gathered (complete on rank 0 only)."""
    if not optimizer.state:  # nothing sharded to gather before the first step
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    by_name = get_optimizer_state_dict(decoder, optimizer, options=_full_options(cpu_offload=True))
    if not by_name:
        return {}
    index = {name: i for i, name in enumerate(_names_by_index(decoder, optimizer))}
    state = {index[name]: value for name, value in by_name["state"].items()}
    return {"state": dict(sorted(state.items())),
            "param_groups": [{**group, "params": [index[name] for name in group["params"]]}
                             for group in by_name["param_groups"]]}


def load_sharded_optimizer_state(decoder: torch.nn.Module, optimizer: torch.optim.Optimizer,
                                 state: dict[str, Any]) -> None:
    """Each rank keeps its slice of the full optimizer states in `state`."""
    if not state["state"]:
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    names = _names_by_index(decoder, optimizer)
    by_name = {"state": {names[i]: value for i, value in state["state"].items()},
               "param_groups": [{**group, "params": [names[i] for i in group["params"]]}
                                for group in state["param_groups"]]}
    set_optimizer_state_dict(decoder, optimizer, by_name, options=_full_options())


class GatheredDecoder:
    """Stands in for the decoder in `save_adapter`: its `state_dict()` is the gathered full state."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self._state = state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


class _LocalShards(Mapping):
    """name -> this rank's shard of each sharded parameter (a view: writing it writes the parameter)."""

    def __init__(self, params: dict[str, torch.nn.Parameter]):
        self.params = params

    def __getitem__(self, name: str) -> torch.Tensor:
        return local_shard(self.params[name].detach())

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)


class ShardedEMA(EMA):
    """The EMA of FSDP-sharded weights: each rank averages its own shards (CPU, fp32).

    Updates and `applied()` are local. `state()` gathers the full shadow (a collective: every rank
    calls it; rank 0 gets the tensors, the others an empty shadow) in the single-process format, and
    `load_state` keeps each rank's slice of a full shadow.
    """

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float):
        self.sharded_params = params
        super().__init__(_LocalShards(params), decay)

    def state(self) -> dict:
        from torch.distributed.tensor import DTensor

        shadow = {}
        for name, param in self.sharded_params.items():
            local = self.shadow[name].to(local_shard(param).device)
            full = DTensor.from_local(local, param.device_mesh, param.placements, shape=param.shape,
                                      stride=param.stride()).full_tensor()
            if param.device_mesh.get_rank() == 0:
                shadow[name] = full.cpu()
        return {"decay": self.decay, "updates": self.updates, "shadow": shadow}

    def load_state(self, state: dict) -> None:
        from torch.distributed.tensor import distribute_tensor

        shadow = {}
        for name, param in self.sharded_params.items():
            full = state["shadow"][name].float().to(local_shard(param).device)
            part = distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None).to_local()
            shadow[name] = part.cpu().clone()
        self.decay, self.updates, self.shadow = state["decay"], state["updates"], shadow
