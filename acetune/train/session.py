"""Everything a run needs, built and checked before any GPU work: cache, model, adapter, optimizer, plan.

Every bad input (fingerprint mismatch, empty cache, impossible crop, an output folder holding
another run, a missing optional dependency) fails here with a clear error, before training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from acetune.adapters import AttachedAdapter, attach
from acetune.audio import LATENT_FRAMES_PER_SECOND
from acetune.config import OptimizerKind, RunConfig, SchedulerKind
from acetune.data.cache import CacheReader
from acetune.data.fingerprint import Fingerprint, bundle_fingerprint, read_fingerprint, require_match
from acetune.errors import ConfigError, TrainingError
from acetune.events import Warned
from acetune.model.bundle import resolve_bundle
from acetune.model.checkpoint import load_model, read_model_config
from acetune.model.config import ModelConfig
from acetune.model.devices import resolve_device, resolve_precision
from acetune.model.masks import AttentionOptions
from acetune.train.adapter_card import trigger_word
from acetune.train.batching import split_indices
from acetune.train.checkpoint import check_output_dir, clean_stale_temps
from acetune.train.distributed import DistInfo, device_for, from_environment, wrap
from acetune.train.optim import build_optimizer, build_scheduler, warmup_steps
from acetune.train.sharding import shard_decoder, uses_fsdp


@dataclass(frozen=True)
class Plan:
    """Numbers derived once from the config and the data; never stored back into the config."""

    train_samples: int
    eval_samples: int
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    effective_batch: int
    trainable_parameters: int
    precision: str
    device: str
    variant: str


@dataclass
class Session:
    config: RunConfig
    plan: Plan
    reader: CacheReader
    train_indices: list[int]
    eval_indices: list[int]
    lengths: list[int]
    model: torch.nn.Module  # AceStepModel with decoder + null_condition_emb loaded
    adapter: AttachedAdapter
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    silence_latent: torch.Tensor
    device: torch.device
    compute_dtype: torch.dtype
    cache_fingerprint: Fingerprint
    warnings: list[Warned]
    dist: DistInfo
    forward_decoder: torch.nn.Module  # the decoder (itself when FSDP-sharded), or its DDP wrapper
    adaptive: object | None = None  # AdaptiveTimesteps when objective.adaptive_timestep_ratio > 0
    trigger: tuple[str, str] = ("", "prepend")  # the cache's activation tag and its position
    auditions: object | None = None  # Auditioner when audition prompts are scheduled (main rank only)
    dit_folder: Path = Path()
    sharded: bool = False  # a data-parallel full fine-tune under FSDP2 (see sharding.py)


def _preflight_full(config: RunConfig, model_config: ModelConfig, device: torch.device, dtype: torch.dtype,
                    shards: int = 1) -> None:
    """A full fine-tune that cannot fit fails before loading anything, pointing at LoRA."""
    from acetune.train.memory import estimate_memory

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
    if need > 0.95 * have:
        raise TrainingError(f"a full fine-tune needs about {need / 2**30:.1f} GiB, the GPU has {have / 2**30:.1f} GiB",
                            fix="train a LoRA instead (--adapter lora, or a vram_* preset), or enable "
                                "loop.gradient_checkpointing and a shorter data.crop_frames")


def check_cache(config: RunConfig) -> tuple[CacheReader, Path, Fingerprint]:
    """The cache exists, is non-empty, and was made by this checkpoint."""
    if not config.data.cache:
        raise ConfigError("data.cache is not set", fix="pass --cache CACHE (made by `acetune preprocess`)")
    if not config.data.checkpoint_dir:
        raise ConfigError("data.checkpoint_dir is not set", fix="pass --checkpoint-dir CHECKPOINTS")
    reader = CacheReader(config.data.cache)
    if len(reader) == 0:
        raise TrainingError("the cache holds no samples", path=Path(config.data.cache),
                            fix="run `acetune preprocess` on a folder with usable songs")
    bundle = resolve_bundle(config.data.checkpoint_dir, config.data.model)
    stored = read_fingerprint(Path(config.data.cache))
    now = bundle_fingerprint(bundle, stored.options)
    require_match(Path(config.data.cache), now, include_options=False)
    return reader, bundle.dit, stored


def check_crop(crop_frames: int, reader: CacheReader) -> None:
    """A crop longer than every song is a mistake (frames taken for seconds?): name the longest song."""
    longest = max(reader.entries, key=lambda entry: entry.latent_length)
    if crop_frames > longest.latent_length:
        seconds = longest.latent_length / LATENT_FRAMES_PER_SECOND
        raise ConfigError(f"data.crop_frames = {crop_frames} ({crop_frames / LATENT_FRAMES_PER_SECOND:g} s) is longer "
                          f"than every song; the longest, {longest.id}, has {longest.latent_length} frames "
                          f"({seconds:g} s)", path=Path(reader.folder),
                          fix=f"use --crop-seconds {math.floor(seconds)} or less, or --crop-seconds 0 for whole songs")


def check_tag(wanted: str, cached: str, cache: Path) -> None:
    """The activation tag is part of the encoded captions: training cannot change it, only check it."""
    if wanted and wanted != cached:
        have = f"with the activation tag {cached!r}" if cached else "without an activation tag"
        raise ConfigError(f"the cache was made {have}, not {wanted!r}; the tag is part of the encoded captions",
                          path=cache, fix=f"preprocess again with --tag {wanted!r} (only captions are re-encoded "
                                          "where they changed), or drop --tag")


def build_session(config: RunConfig, *, resuming: bool) -> Session:
    warnings: list[Warned] = []
    reader, dit_folder, fingerprint = check_cache(config)
    lengths = [entry.latent_length for entry in reader.entries]
    check_crop(config.data.crop_frames, reader)
    trigger = trigger_word(reader)
    check_tag(config.data.tag, trigger[0], Path(config.data.cache))
    dist = from_environment()
    if dist.is_main:
        note = check_output_dir(Path(config.save.output_dir), resuming)
        warnings.extend([Warned("fresh-start", note)] if note else [])
        warnings.extend(Warned("stale-temp", f"removed {path}, left half-written by a run that was killed")
                        for path in clean_stale_temps(Path(config.save.output_dir)))
    device = device_for(dist, resolve_device(config.loop.device))
    compute_dtype = resolve_precision(config.loop.precision, device)
    sharded = uses_fsdp(config, dist)
    if config.adapter.kind.value == "full" and device.type == "cuda":
        _preflight_full(config, read_model_config(dit_folder), device, compute_dtype,
                        shards=dist.world_size if sharded else 1)
    train_indices, eval_indices = split_indices(reader, config.data.val_split, config.loop.seed)
    options = AttentionOptions(window_convention=config.loop.window_convention, honor_padding=config.loop.honor_padding,
                               rope_dtype=config.loop.rope_dtype)
    base_dtype = compute_dtype if config.adapter.kind.value != "full" else torch.float32
    loaded = load_model(dit_folder, components=("decoder", "null_condition_emb"), dtype=base_dtype, device=device,
                        options=options)
    model = loaded.model
    model.null_condition_emb.requires_grad_(False)
    adapter = attach(model.decoder, config.adapter, seed=config.loop.seed)
    model.decoder.set_gradient_checkpointing(config.loop.gradient_checkpointing)
    with torch.no_grad():  # trainable weights stay fp32 (mixed precision keeps fp32 masters)
        for param in adapter.trainable_parameters.values():
            param.data = param.data.float()
    if sharded:  # before the optimizer: FSDP replaces the parameters with sharded ones
        shard_decoder(model.decoder, dist, device, compute_dtype)
        if config.audition.prompts and (config.audition.every_steps or config.audition.every_epochs):
            warnings.append(Warned("audition-fsdp", "auditions are not rendered while FSDP shards the decoder; "
                                                    "render the saved checkpoints, or set loop.fsdp = false"))
    elif dist.enabled and config.adapter.kind.value == "full" and config.loop.fsdp:
        warnings.append(Warned("fsdp-optimizer", f"FSDP shards full fine-tunes with adamw only; "
                                                 f"{config.optim.optimizer.value} keeps DDP replicas"))
    optim_config = config.optim
    schedule = config.schedule
    if optim_config.optimizer == OptimizerKind.PRODIGY and schedule.scheduler not in (
            SchedulerKind.CONSTANT, SchedulerKind.CONSTANT_WITH_WARMUP):
        schedule = replace(schedule, scheduler=SchedulerKind.CONSTANT)
        warnings.append(Warned("prodigy-schedule", "Prodigy adapts its own step size: the schedule is forced to "
                                                   "constant"))
    optimizer = build_optimizer(adapter.param_groups(optim_config.lr, optim_config.weight_decay), optim_config, device)
    items = len(train_indices) * config.data.repeats
    global_batch = config.data.batch_size * dist.world_size
    # data-parallel runs drop an incomplete last global batch so every rank does the same steps
    batches = items // global_batch if dist.enabled else math.ceil(items / global_batch)
    steps_per_epoch = math.ceil(batches / optim_config.grad_accum)
    total = steps_per_epoch * config.loop.epochs
    if config.loop.max_steps:
        total = min(total, config.loop.max_steps)
    if total < 1:
        raise TrainingError("the run would take zero optimizer steps", fix="raise --epochs (loop.epochs) or --max-steps (loop.max_steps)")
    scheduler = build_scheduler(optimizer, schedule, total)
    silence = loaded.silence_latent
    if silence is None:
        raise TrainingError("the model folder has no silence_latent.pt (needed for the context latents)",
                            path=dit_folder, fix="download silence_latent.pt into the model folder")
    plan = Plan(
        train_samples=len(train_indices), eval_samples=len(eval_indices), batches_per_epoch=batches,
        steps_per_epoch=steps_per_epoch, total_steps=total, warmup_steps=warmup_steps(schedule, total),
        effective_batch=config.data.batch_size * optim_config.grad_accum * dist.world_size,
        trainable_parameters=adapter.num_trainable,
        precision=str(compute_dtype).removeprefix("torch."), device=str(device), variant=fingerprint.variant,
    )
    return Session(config, plan, reader, train_indices, eval_indices, lengths, model, adapter, optimizer, scheduler,
                   silence.cpu(), device, compute_dtype, fingerprint, warnings, dist,
                   model.decoder if sharded else wrap(model.decoder, dist, device), trigger=trigger,
                   dit_folder=dit_folder, sharded=sharded)
