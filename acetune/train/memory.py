"""Predict a training run's peak memory before running it.

The estimate is `weights + optimizer states + gradients + activations`, where the last term is
what one micro-step adds on top at its peak. Parameters, gradients and optimizer states are
counted from the adapter attached to a decoder built on the meta device (exact parameter
counts, no memory). The step itself is *simulated*: one micro-step of the real objective
(`velocity_loss`: batch, forward, loss, backward) runs on the meta device under a dispatch mode
that follows every tensor storage the step allocates, from its allocation until it is freed,
and records the peak of the live bytes. No data is touched and the implementation is followed
as it is, so the peak has the structure of the real one:

* without checkpointing it falls early in the backward pass: every activation the forward
  saved (each storage counted once), the batch and the prediction, the output gradient, and the
  gradient temporaries of the layer being differentiated (the SwiGLU's [B, P, intermediate]
  gradients are the largest);
* with non-reentrant checkpointing it falls in the backward of a checkpointed layer: the
  inputs saved at the checkpointed layers not yet differentiated, all saved activations of the
  layers that are not checkpointed, the recomputed activations of that one layer and its
  gradient temporaries, and the adapter gradients accumulated so far (so with LoRA on a small
  model it is the last layer differentiated, layer 0). Counting only the saved inputs
  under-predicts by about a layer's activations and gradients;
* shared tensors (RoPE tables, the sliding-window mask, the condition projection, the timestep
  modulation) are counted once, which is what dominates short crops.

Attention runs through a stand-in on the meta device: there `scaled_dot_product_attention`
would take the math path and save a [B, heads, P, S] probability matrix per call, but the CPU
and CUDA kernels the trainer uses (flash / memory-efficient) save only q, k, v, the output, the
log-sum-exp and the additive mask, and allocate dq, dk, dv in backward; the stand-in saves and
allocates exactly those. Kernel-internal scratch (blocked attention tiles, BLAS workspaces) and
allocator slack are not modelled.

Terms added around the simulated peak `P` (its gradient elements so far: `g`):

* gradients are the fp32 gradients of the trainable weights. With `optim.grad_accum` 1 only
  the `g` elements accumulated before the peak are live at it; the rest appear after it, so
  `activations = P - g * e - (trainable - g) * 4` (`e`: bytes per element of the compute dtype),
  never below the optimizer step's temporaries (the step holds all gradients). With accumulation
  every gradient is live through the later backward passes: `activations = P - g * e`.
* optimizer states: `OPTIMIZER_BYTES_PER_PARAM` per trainable weight, resident from the first step.
* optimizer step temporaries: fused AdamW (CUDA) needs none; the per-tensor update loops (CPU
  AdamW, Adafactor, Prodigy) hold about two fp32 copies of the largest trainable parameter at a
  time. Counted in full; they matter only when the step outweighs the backward peak.
* autocast copies (compute dtype below fp32), added to the backward peak: autocast casts each
  fp32 trainable weight to the compute dtype once per forward and the cast stays saved for
  backward, except inside checkpointed layers (recomputed one layer at a time).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.graph import get_gradient_edge
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from acetune.adapters import attach
from acetune.config import AdapterKind, OptimizerKind, PreprocessConfig, RunConfig
from acetune.audio import LATENT_FRAMES_PER_SECOND
from acetune.errors import TrainingError
from acetune.model.checkpoint import build_model
from acetune.model.config import ModelConfig
from acetune.model.masks import AttentionOptions
from acetune.train.objective import DEFAULT_CFG_RATIO, Draws, velocity_loss
from acetune.train.tasks import task_modules, trained_tasks

OPTIMIZER_BYTES_PER_PARAM = {  # fp32 states per trainable parameter
    OptimizerKind.ADAMW: 8.0, OptimizerKind.ADAMW8BIT: 2.0, OptimizerKind.ADAFACTOR: 0.1, OptimizerKind.PRODIGY: 16.0,
}
STEP_TEMPORARIES = 2  # parameter-sized fp32 temporaries of an unfused per-tensor optimizer update
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")



@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # frozen base (compute dtype) + trainable fp32 masters + the frozen parts its tasks load
    gradients: int
    optimizer: int
    activations: int  # everything else the step holds at its peak (see the module docstring)
    trainable_parameters: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def rows(self) -> list[tuple[str, int]]:
        return [("weights", self.weights), ("gradients", self.gradients), ("optimizer states", self.optimizer),
                ("activations", self.activations), ("total", self.total)]


@dataclass(frozen=True)
class StepPeak:
    """One simulated micro-step: bytes it allocated that are alive at its peak, and when."""

    peak: int  # activations, temporaries and the gradients accumulated so far
    gradient_elements: int  # trainable elements whose gradient had been accumulated at the peak
    saved: int  # alive at the end of the forward pass (what backward starts from)


class _FusedAttention(torch.autograd.Function):
    """What the flash / memory-efficient kernels keep: q, k, v, output, log-sum-exp (fp32) and the mask."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        batch, heads, length, _ = q.shape
        out = q.new_empty(batch, length, heads, v.shape[-1]).transpose(1, 2)  # the kernels' [B, L, H, E] layout
        lse = q.new_empty(batch, heads, length, dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse, *([] if mask is None else [mask]))
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors[:3]
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), None


class _FusedAttentionMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
            return _FusedAttention.apply(args[0], args[1], args[2], mask)
        return func(*args, **kwargs)


class _LiveBytes(TorchDispatchMode):
    """Bytes of the storages allocated while active and not yet freed; keeps the peak."""

    def __init__(self, resident: set[int], trainable: list[torch.nn.Parameter]):
        super().__init__()
        self.resident = resident
        self.live: dict[int, int] = {}
        self.now = self.peak = self.gradients = self.gradients_at_peak = 0
        self._hooks = [p.register_post_accumulate_grad_hook(self._accumulated) for p in trainable]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        key, size = storage._cdata, storage.nbytes()
        if key in self.resident or self.live.get(key, -1) >= size:
            return
        if key not in self.live:
            weakref.finalize(storage, self._free, key)
        self.now += size - self.live.get(key, 0)
        self.live[key] = size
        if self.now > self.peak:
            self.peak, self.gradients_at_peak = self.now, self.gradients

    def _free(self, key: int) -> None:
        self.now -= self.live.pop(key, 0)

    def _accumulated(self, param: torch.Tensor) -> None:
        self.gradients += param.numel()

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()


def _storages(tensors) -> set[int]:
    return {t.untyped_storage()._cdata for t in tensors}


def _inputs(config: ModelConfig, batch: int, frames: int, condition: int, dtype: torch.dtype):
    """A meta batch as `_micro_step` hands it to `velocity_loss`."""
    channels = config.audio_acoustic_hidden_dim
    with torch.device("meta"):
        x0 = torch.empty(batch, frames, channels, dtype=dtype)
        draws = Draws(torch.empty(batch), torch.empty(batch, frames, channels), torch.empty(batch), torch.empty(batch))
        return dict(x0=x0, frame_mask=torch.empty(batch, frames, dtype=dtype),
                    encoder_hidden_states=torch.empty(batch, condition, config.condition_hidden_size, dtype=dtype),
                    encoder_mask=torch.empty(batch, condition, dtype=dtype),
                    context_latents=torch.empty(batch, frames, 2 * channels, dtype=dtype), draws=draws,
                    t=torch.empty(batch))


def simulate_step(decoder: torch.nn.Module, null_embedding: torch.Tensor, config: ModelConfig, *, batch: int,
                  frames: int, condition: int, dtype: torch.dtype) -> StepPeak:
    """Run one micro-step (batch, forward, loss, backward) of a meta `decoder` and follow its memory."""
    trainable = [p for p in decoder.parameters() if p.requires_grad]
    resident = _storages([*decoder.parameters(), *decoder.buffers(), null_embedding])
    tracker = _LiveBytes(resident, trainable)
    try:
        with _FusedAttentionMode(), tracker:
            inputs = _inputs(config, batch, frames, condition, dtype)
            draws, t = inputs.pop("draws"), inputs.pop("t")
            out = velocity_loss(decoder, null_embedding, **inputs, draws=draws, t=t, cfg_ratio=DEFAULT_CFG_RATIO)
            saved = tracker.now
            loss = out.loss.float()
            # Through a gradient edge: `loss.backward()` would run the engine inside the function mode's
            # handler, with the mode off, and checkpointed layers would recompute attention on the math path.
            torch.autograd.backward(get_gradient_edge(loss), grad_tensors=torch.ones_like(loss))
            del out, loss, inputs, draws, t
    finally:
        tracker.close()
        for param in trainable:
            param.grad = None
    return StepPeak(tracker.peak, tracker.gradients_at_peak, saved)


def saved_activation_bytes(decoder: torch.nn.Module, config: ModelConfig, *, batch: int, frames: int,
                           condition: int, dtype: torch.dtype) -> int:
    """Bytes autograd saves for backward in one meta forward of `decoder`, each storage counted once.

    Weights that autograd keeps (a linear layer saves its weight) are resident and not counted.
    """
    resident = _storages([*decoder.parameters(), *decoder.buffers()])
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
    with _FusedAttentionMode(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        decoder(x, t, t, states, context)
    return sum(storages.values())


def _autocast_copies(named: dict[str, torch.nn.Parameter], checkpointed: set[int], element: int) -> int:
    """Compute-dtype casts of the trainable weights that stay saved for backward (see the docstring)."""
    per_layer: dict[int, int] = {}
    kept = 0
    for name, param in named.items():
        match = _LAYER.search(name)
        if match is None or int(match.group(1)) not in checkpointed:
            kept += param.numel()
        if match is not None:
            per_layer[int(match.group(1))] = per_layer.get(int(match.group(1)), 0) + param.numel()
    recomputed = max((per_layer.get(i, 0) for i in checkpointed), default=0)
    return (kept + recomputed) * element


def estimate_memory(run: RunConfig, model_config: ModelConfig, *, frames: int | None = None,
                    condition: int = 300, dtype: torch.dtype = torch.bfloat16) -> MemoryEstimate:
    """Peak bytes of one training step of `run` on a model described by `model_config`."""
    # whole songs (crop 0): the longest song preprocessing keeps by default
    frames = frames if frames is not None else (run.data.crop_frames or LONGEST_SONG_FRAMES)
    model = build_model(model_config, AttentionOptions(run.loop.window_convention, honor_padding=False), meta=True)
    decoder = model.decoder.to(dtype)
    null_embedding = model.null_condition_emb.detach().to(dtype)
    adapter = attach(decoder, run.adapter, seed=0)
    decoder.set_gradient_checkpointing(run.loop.gradient_checkpointing)
    decoder.set_mlp_recompute(run.loop.recompute_mlp)
    named = adapter.trainable_parameters
    with torch.no_grad():  # the adapter computes in the compute dtype (autocast), its fp32 masters are counted below
        for param in named.values():
            param.data = param.data.to(dtype)
    trainable = adapter.num_trainable
    base = sum(p.numel() for p in decoder.parameters()) - trainable
    element = torch.tensor([], dtype=dtype).element_size()
    full = run.adapter.kind == AdapterKind.FULL
    weights = (base + trainable) * 4 if full else base * element + trainable * 4
    weights += model_config.condition_hidden_size * element  # the null condition embedding
    frozen = task_modules(trained_tasks(run.objective))  # cover: the tokenizer and detokenizer, in the base's dtype
    weights += sum(p.numel() for name in frozen for p in getattr(model, name).parameters()) * (4 if full else element)
    step = simulate_step(decoder, null_embedding, model_config, batch=run.data.batch_size, frames=frames,
                         condition=condition, dtype=dtype)
    gradients = trainable * 4
    step_temporaries = STEP_TEMPORARIES * 4 * max((p.numel() for p in named.values()), default=0)
    backward = step.peak - step.gradient_elements * element  # the backward peak without the gradients in it
    if run.optim.grad_accum <= 1:  # gradients the backward has not reached yet do not exist at its peak
        backward -= (trainable - step.gradient_elements) * 4
    if dtype != torch.float32:
        backward += _autocast_copies(named, set(decoder.checkpointed_layers), element)
    activations = max(backward, step_temporaries)  # the optimizer step holds every gradient, no activation
    optimizer = int(trainable * OPTIMIZER_BYTES_PER_PARAM[run.optim.optimizer])
    return MemoryEstimate(weights=weights, gradients=gradients, optimizer=optimizer, activations=int(activations),
                          trainable_parameters=trainable)


LONGEST_SONG_FRAMES = int(PreprocessConfig().max_duration_s * LATENT_FRAMES_PER_SECOND)  # 6000 (240 s)

# A run fits when its estimate leaves a tenth of the device for the allocator's fragmentation and the
# CUDA context (the one threshold `acetune estimate-memory`, the web app's Train page and the full fine-tune
# preflight share).
FITS_SHARE = 0.9


def fits(need_bytes: float, have_bytes: float) -> bool:
    return need_bytes <= FITS_SHARE * have_bytes


def check_full_fits(config: RunConfig, model_config: ModelConfig, device: torch.device, dtype: torch.dtype,
                    shards: int = 1) -> None:
    """A full fine-tune that cannot fit fails before loading anything, pointing at LoRA."""
    estimate = estimate_memory(config, model_config, dtype=dtype)
    need = estimate.total
    if shards > 1:  # FSDP: a rank keeps 1/N of the fp32 masters, the optimizer states and the gradients,
        # except that accumulation micro-steps hold full gradients and the gathered (compute dtype) weights
        accumulates = config.optim.grad_accum > 1
        split = estimate.weights + estimate.optimizer + (0 if accumulates else estimate.gradients)
        need -= split * (1 - 1 / shards)
        if accumulates:
            need += estimate.weights * torch.tensor([], dtype=dtype).element_size() / 4
    have = torch.cuda.get_device_properties(device).total_memory
    if not fits(need, have):
        raise TrainingError(f"a full fine-tune needs about {need / 2**30:.1f} GiB, the GPU has {have / 2**30:.1f} GiB",
                            fix="train a LoRA instead (--adapter lora, or a vram_* preset), or enable "
                                "loop.gradient_checkpointing and a shorter data.crop_frames")


def memory_levers(run: RunConfig, as_flags: bool) -> str:
    """What to try when `run` does not fit, cheapest first; levers already pulled are left out.

    `as_flags` spells the config keys as the CLI's `--set key=value`, else as `key = value`.
    """
    keys = ([] if run.loop.recompute_mlp else [("loop.recompute_mlp", "true")]) + \
        [("loop.gradient_checkpointing", "1.0")]
    spelled = [f"--set {key}={value}" if as_flags else f"{key} = {value}" for key, value in keys]
    return ", ".join(spelled) + ", a shorter data.crop_frames, or a smaller preset"
