"""Predict a training run's peak memory before running it.

Parameters, gradients and optimizer states are counted from the adapter attached to a decoder
built on the meta device (no memory, exact parameter counts). Activations come from a meta
dry run of one forward pass with `saved_tensors_hooks`: every tensor autograd keeps for the
backward pass is counted once (by storage) with its real shape and dtype, so the estimate
follows the implementation, including gradient checkpointing. No data is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from acetune.adapters import attach
from acetune.config import AdapterKind, OptimizerKind, RunConfig
from acetune.model.checkpoint import build_model
from acetune.model.config import ModelConfig
from acetune.model.masks import AttentionOptions

OPTIMIZER_BYTES_PER_PARAM = {  # fp32 states per trainable parameter
    OptimizerKind.ADAMW: 8.0, OptimizerKind.ADAMW8BIT: 2.0, OptimizerKind.ADAFACTOR: 0.1, OptimizerKind.PRODIGY: 16.0,
}


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # frozen base (compute dtype) + trainable fp32 masters
    gradients: int
    optimizer: int
    activations: int  # saved for backward at the peak micro-batch
    trainable_parameters: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def rows(self) -> list[tuple[str, int]]:
        return [("weights", self.weights), ("gradients", self.gradients), ("optimizer states", self.optimizer),
                ("activations", self.activations), ("total", self.total)]


def saved_activation_bytes(decoder: torch.nn.Module, config: ModelConfig, *, batch: int, frames: int,
                           condition: int, dtype: torch.dtype) -> int:
    """Bytes autograd saves in one forward on the meta device, each storage counted once.

    Parameters that autograd keeps (a linear layer saves its weight) are already counted as weights.
    """
    resident = {t.untyped_storage()._cdata for t in [*decoder.parameters(), *decoder.buffers()]}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in resident:
            storages[storage._cdata] = max(storages.get(storage._cdata, 0), storage.nbytes())
        return tensor

    channels = config.audio_acoustic_hidden_dim
    with torch.device("meta"):
        x = torch.empty(batch, frames, channels, dtype=dtype)
        context = torch.empty(batch, frames, 2 * channels, dtype=dtype)
        states = torch.empty(batch, condition, config.condition_hidden_size, dtype=dtype)
        t = torch.empty(batch)
    x.requires_grad_(True)  # what flows back through a frozen base to the adapter
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        decoder(x, t, t, states, context)
    return sum(storages.values())


def estimate_memory(run: RunConfig, model_config: ModelConfig, *, frames: int | None = None,
                    condition: int = 300, dtype: torch.dtype = torch.bfloat16) -> MemoryEstimate:
    """Peak bytes of one training step of `run` on a model described by `model_config`."""
    frames = frames if frames is not None else (run.data.crop_frames or 6000)
    model = build_model(model_config, AttentionOptions(run.loop.window_convention, honor_padding=False), meta=True)
    decoder = model.decoder.to(dtype)
    adapter = attach(decoder, run.adapter, seed=0)
    decoder.set_gradient_checkpointing(run.loop.gradient_checkpointing)
    trainable = adapter.num_trainable
    base = sum(p.numel() for p in decoder.parameters()) - trainable
    element = torch.tensor([], dtype=dtype).element_size()
    full = run.adapter.kind == AdapterKind.FULL
    weights = base * element + trainable * 4 + model_config.condition_hidden_size * element
    shapes = dict(batch=run.data.batch_size, frames=frames, condition=condition, dtype=dtype)
    saved = saved_activation_bytes(decoder, model_config, **shapes)
    # In backward one layer's activations are live again (recomputed when checkpointed) next to
    # their gradients: the peak holds the saved tensors plus about one layer's worth.
    decoder.set_gradient_checkpointing(0.0)
    per_layer = saved_activation_bytes(decoder, model_config, **shapes) / model_config.num_hidden_layers
    activations = int(saved + per_layer)
    optimizer = int(trainable * OPTIMIZER_BYTES_PER_PARAM[run.optim.optimizer])
    return MemoryEstimate(weights=weights if not full else (base + trainable) * 4, gradients=trainable * 4,
                          optimizer=optimizer, activations=activations, trainable_parameters=trainable)
