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
from acetune.config import AdapterKind, OptimizerKind, RunConfig, ScheduleConfig, SchedulerKind
from acetune.data.cache import CacheReader
from acetune.data.fingerprint import Fingerprint, bundle_fingerprint, read_fingerprint, require_match
from acetune.errors import ConfigError, TrainingError
from acetune.events import Warned
from acetune.model.bundle import Bundle, resolve_bundle
from acetune.model.checkpoint import load_model, read_model_config
from acetune.model.compiled import compile_layers, toolchain_problem
from acetune.model.devices import resolve_device, resolve_precision
from acetune.model.masks import AttentionOptions
from acetune.model.variant import kind_of
from acetune.train.adapter_card import trigger_word
from acetune.train.batching import split_indices
from acetune.train.checkpoint import check_output_dir, clean_stale_temps
from acetune.train.memory import check_full_fits
from acetune.train.distributed import DistInfo, device_for, from_environment
from acetune.train.optim import build_optimizer, build_scheduler, warmup_steps
from acetune.train.objective import Denoiser
from acetune.train.sharding import shard_decoder, uses_fsdp
from acetune.train.strategy import Replicated, Sharded
from acetune.train.task_texts import TaskTexts, encode_task_texts
from acetune.train.tasks import check_tasks, task_modules, trained_tasks


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


@dataclass(frozen=True)
class DataSetup:
    """The cache and what the run takes from it."""

    reader: CacheReader
    dit_folder: Path
    text_encoder_folder: Path
    fingerprint: Fingerprint
    trigger: tuple[str, str]  # the cache's activation tag and its position
    train_indices: list[int]
    eval_indices: list[int]
    lengths: list[int]


@dataclass(frozen=True)
class Session:
    """Everything a run needs, complete when built (`build_session`) and never changed afterwards."""

    config: RunConfig
    plan: Plan
    data: DataSetup
    model: torch.nn.Module  # AceStepModel with decoder + null_condition_emb loaded
    adapter: AttachedAdapter
    strategy: Replicated  # or Sharded: the data-parallel strategy
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    silence_latent: torch.Tensor
    device: torch.device
    compute_dtype: torch.dtype
    warnings: tuple[Warned, ...]
    task_texts: TaskTexts | None  # the caption states under each other trained task's instruction

    # shorthands the savers, auditions and tests read
    reader = property(lambda self: self.data.reader)
    trigger = property(lambda self: self.data.trigger)
    dit_folder = property(lambda self: self.data.dit_folder)
    cache_fingerprint = property(lambda self: self.data.fingerprint)
    dist = property(lambda self: self.strategy.dist)
    sharded = property(lambda self: self.strategy.sharded)

    def denoiser(self) -> Denoiser:
        config = self.model.config
        return Denoiser(self.strategy.forward, self.model.null_condition_emb, config.timestep_mu,
                        config.timestep_sigma, context=self._context)

    def _context(self, src: torch.Tensor, masks: torch.Tensor, covers: torch.Tensor,
                 frame_mask: torch.Tensor) -> torch.Tensor:
        silence = self.silence_latent.to(src.device)
        return self.model.context_latents(src, masks, covers, silence, frame_mask)


def check_cache(config: RunConfig) -> tuple[CacheReader, Bundle, Fingerprint]:
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
    return reader, bundle, stored


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


def build_session(config: RunConfig, *, resuming: bool, notes: tuple[Warned, ...] = ()) -> Session:
    """The setup of a run as named steps: data, output folder, device, model, adapter, strategy, optimizer, plan."""
    dist = from_environment()
    data = setup_data(config)
    warnings = setup_output(config, resuming) if dist.is_main else []
    device = device_for(dist, resolve_device(config.loop.device))
    compute_dtype = resolve_precision(config.loop.precision, device)
    sharded = uses_fsdp(config, dist)
    if config.adapter.kind == AdapterKind.FULL and device.type == "cuda":
        check_full_fits(config, read_model_config(data.dit_folder), device, compute_dtype,
                        shards=dist.world_size if sharded else 1)
    model, silence = setup_model(config, data.dit_folder, device, compute_dtype)
    texts = encode_task_texts(data.reader, trained_tasks(config.objective), data.text_encoder_folder,
                              data.dit_folder, options=model.options, device=device, dtype=compute_dtype)
    adapter = setup_adapter(config, model)
    setup_mlp_recompute(config, model.decoder, warnings)
    setup_compile(config, model.decoder, device, warnings)
    strategy = setup_strategy(config, dist, model.decoder, adapter, device, compute_dtype, sharded, warnings)
    schedule = setup_schedule(config, warnings)
    optimizer = build_optimizer(adapter.param_groups(config.optim.lr, config.optim.weight_decay), config.optim, device)
    plan = setup_plan(config, data, dist, adapter, compute_dtype, device, schedule)
    scheduler = build_scheduler(optimizer, schedule, plan.total_steps)
    return Session(config, plan, data, model, adapter, strategy, optimizer, scheduler, silence.cpu(), device,
                   compute_dtype, (*warnings, *notes), texts)


def setup_data(config: RunConfig) -> DataSetup:
    reader, bundle, fingerprint = check_cache(config)
    check_tasks(trained_tasks(config.objective), kind_of(fingerprint.variant))
    check_crop(config.data.crop_frames, reader)
    trigger = trigger_word(reader)
    check_tag(config.data.tag, trigger[0], Path(config.data.cache))
    train_indices, eval_indices = split_indices(reader, config.data.val_split, config.loop.seed)
    return DataSetup(reader, bundle.dit, bundle.text_encoder, fingerprint, trigger, train_indices, eval_indices,
                     [entry.latent_length for entry in reader.entries])


def setup_output(config: RunConfig, resuming: bool) -> list[Warned]:
    """The output folder can take this run; half-written files of a killed run are removed (main rank)."""
    output = Path(config.save.output_dir)
    note = check_output_dir(output, resuming)
    return [*([Warned("fresh-start", note)] if note else []),
            *(Warned("stale-temp", f"removed {path}, left half-written by a run that was killed")
              for path in clean_stale_temps(output))]


def setup_model(config: RunConfig, dit_folder: Path, device: torch.device,
                compute_dtype: torch.dtype) -> tuple[torch.nn.Module, torch.Tensor]:
    """The decoder and null condition (fp32 for a full fine-tune), and the silence latent."""
    options = AttentionOptions(window_convention=config.loop.window_convention, honor_padding=config.loop.honor_padding,
                               rope_dtype=config.loop.rope_dtype)
    base_dtype = compute_dtype if config.adapter.kind != AdapterKind.FULL else torch.float32
    covers = task_modules(trained_tasks(config.objective))  # cover hints come from the frozen tokenizer, detokenizer
    loaded = load_model(dit_folder, components=("decoder", "null_condition_emb", *covers), dtype=base_dtype,
                        device=device, options=options)
    if loaded.silence_latent is None:
        raise TrainingError("the model folder has no silence_latent.pt (needed for the context latents)",
                            path=dit_folder, fix="download silence_latent.pt into the model folder")
    loaded.model.null_condition_emb.requires_grad_(False)
    for name in covers:
        getattr(loaded.model, name).requires_grad_(False).eval()
    return loaded.model, loaded.silence_latent


def setup_adapter(config: RunConfig, model: torch.nn.Module) -> AttachedAdapter:
    adapter = attach(model.decoder, config.adapter, seed=config.loop.seed)
    model.decoder.set_gradient_checkpointing(config.loop.gradient_checkpointing)
    with torch.no_grad():  # trainable weights stay fp32 (mixed precision keeps fp32 masters)
        for param in adapter.trainable_parameters.values():
            param.data = param.data.float()
    return adapter


def setup_mlp_recompute(config: RunConfig, decoder: torch.nn.Module, warnings: list[Warned]) -> None:
    """Keep only each MLP's input for backward when asked; say which layers cannot (an adapter on their MLP)."""
    applied = decoder.set_mlp_recompute(config.loop.recompute_mlp)
    skipped = sorted(set(range(len(decoder.layers))) - set(applied)) if config.loop.recompute_mlp else []
    if skipped:
        warnings.append(Warned("recompute-mlp", f"loop.recompute_mlp: layers {skipped} keep their MLP activations "
                                                "because the adapter trains their MLP projections"))


def setup_compile(config: RunConfig, decoder: torch.nn.Module, device: torch.device, warnings: list[Warned]) -> None:
    """Compile the decoder's layers when asked and possible; otherwise say why and train eagerly."""
    if not config.loop.compile:
        return
    problem = toolchain_problem(device)
    if problem:
        warnings.append(Warned("compile", f"loop.compile: torch.compile cannot run here ({problem}); training "
                                          "without it. Install a C++ compiler (CPU) or Triton (GPU), or set "
                                          "loop.compile = false"))
        return
    compile_layers(decoder)


def setup_strategy(config: RunConfig, dist: DistInfo, decoder: torch.nn.Module, adapter: AttachedAdapter,
                   device: torch.device, compute_dtype: torch.dtype, sharded: bool,
                   warnings: list[Warned]) -> Replicated:
    """Replicas (DDP when data parallel) or FSDP shards; call before building the optimizer."""
    if not sharded:
        if dist.enabled and config.adapter.kind == AdapterKind.FULL and config.loop.fsdp:
            warnings.append(Warned("fsdp-optimizer", f"FSDP shards full fine-tunes with adamw only; "
                                                     f"{config.optim.optimizer.value} keeps DDP replicas"))
        return Replicated(dist, decoder, adapter, device)
    shard_decoder(decoder, dist, device, compute_dtype)  # FSDP replaces the parameters with sharded ones
    if config.audition.prompts and (config.audition.every_steps or config.audition.every_epochs):
        warnings.append(Warned("audition-fsdp", "auditions are not rendered while FSDP shards the decoder; "
                                                "render the saved checkpoints, or set loop.fsdp = false"))
    return Sharded(dist, decoder, adapter, device)


def setup_schedule(config: RunConfig, warnings: list[Warned]) -> ScheduleConfig:
    if config.optim.optimizer == OptimizerKind.PRODIGY and config.schedule.scheduler not in (
            SchedulerKind.CONSTANT, SchedulerKind.CONSTANT_WITH_WARMUP):
        warnings.append(Warned("prodigy-schedule", "Prodigy adapts its own step size: the schedule is forced to "
                                                   "constant"))
        return replace(config.schedule, scheduler=SchedulerKind.CONSTANT)
    return config.schedule


def setup_plan(config: RunConfig, data: DataSetup, dist: DistInfo, adapter: AttachedAdapter,
               compute_dtype: torch.dtype, device: torch.device, schedule: ScheduleConfig) -> Plan:
    items = len(data.train_indices) * config.data.repeats
    global_batch = config.data.batch_size * dist.world_size
    # data-parallel runs drop an incomplete last global batch so every rank does the same steps
    batches = items // global_batch if dist.enabled else math.ceil(items / global_batch)
    steps_per_epoch = math.ceil(batches / config.optim.grad_accum)
    total = steps_per_epoch * config.loop.epochs
    if config.loop.max_steps:
        total = min(total, config.loop.max_steps)
    if total < 1:
        raise TrainingError("the run would take zero optimizer steps",
                            fix="raise --epochs (loop.epochs) or --max-steps (loop.max_steps)")
    return Plan(
        train_samples=len(data.train_indices), eval_samples=len(data.eval_indices), batches_per_epoch=batches,
        steps_per_epoch=steps_per_epoch, total_steps=total, warmup_steps=warmup_steps(schedule, total),
        effective_batch=config.data.batch_size * config.optim.grad_accum * dist.world_size,
        trainable_parameters=adapter.num_trainable,
        precision=str(compute_dtype).removeprefix("torch."), device=str(device), variant=data.fingerprint.variant,
    )
