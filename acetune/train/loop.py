"""The one training loop: a generator of events that front ends render and tests collect.

    control = Control()
    for event in train.run(config, control):
        ...

It knows nothing about any front end. Stop requests, Ctrl-C, SIGTERM and non-finite losses all
end the same way: a resumable checkpoint of the last good state, then `Finished`.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from acetune.adapters import save_adapter
from acetune.atomic import check_writable
from acetune.config import BestMetric, LossWeighting, RunConfig, TimestepMode, config_to_dict
from acetune.errors import TrainingError
from acetune.events import (Event, EvalDone, Finished, LayerGradNorms, Progressed, Saved, StepDone, TrainStarted,
                            Warned)
from acetune.locks import hold_folder
from acetune.train.batching import Coverage, collate, plan_epoch
from acetune.model.devices import mixed_precision
from acetune.train.adaptive import AdaptiveTimesteps
from acetune.train.adapter_card import adapter_metadata
from acetune.train.auditions import prepare_auditions
from acetune.train.distributed import barrier, from_environment, mean_across, no_sync, sum_across
from acetune.train.checkpoint import find_latest, prune_checkpoints, save_checkpoint, step_folder
from acetune.train.ema import EMA
from acetune.train.evaluation import eval_loss
from acetune.train.resume import Progress, check_resumable, initial_progress, load_progress, progress_state
from acetune.train.session import Session, build_session
from acetune.train.sharding import ShardedEMA, adapter_for_saving, drop_unsynced_gradients, local_shard, replicated
from acetune.train.state import seed_everything
from acetune.train.tracker import BestTracker
from acetune.train.objective import draw, min_snr_weights, timesteps_from, velocity_loss


@dataclass
class Control:
    """Commands from a front end, read at step boundaries."""

    stop: bool = False
    save_now: bool = False


@dataclass
class Counters:
    step_loss: float = 0.0
    micro: int = 0
    samples: int = 0
    started: float = field(default_factory=time.perf_counter)
    bad_losses: int = 0


def run(config: RunConfig, control: Control | None = None) -> Iterator[Event]:
    """The run's events. Its folder is locked (`acetune.locks`) before anything loads and until the
    generator ends or is closed, so a second run on the same folder is refused at once."""
    output_dir = Path(config.save.output_dir)
    main = from_environment().is_main
    if main:
        check_writable(output_dir)
    with hold_folder(output_dir, "acetune train") if main else nullcontext() as lock:
        yield from _run(config, control or Control(), lock.took_over if lock is not None else None)


def _run(config: RunConfig, control: Control, took_over: str | None) -> Iterator[Event]:
    output_dir = Path(config.save.output_dir)
    resume_from, notes = _checkpoint_to_resume(config.save.resume_from, output_dir)
    seed_everything(config.loop.seed)  # a resume then restores the saved states over these
    session = build_session(config, resuming=resume_from is not None)
    session.warnings.extend([*notes, *([Warned("stale-lock", took_over)] if took_over else [])])
    progress = initial_progress(config.data.coverage_bins)
    ema_class = ShardedEMA if session.sharded else EMA
    ema = ema_class(session.adapter.trainable_parameters, config.loop.ema_decay) if config.loop.ema_decay > 0 else None
    tracker = BestTracker(config.loop.min_delta, config.loop.early_stop_patience, config.loop.best_after)
    generator = torch.Generator().manual_seed(config.loop.seed)
    adaptive = _adaptive_sampler(config)
    resumed_path = None
    if resume_from is not None:
        progress, tracker = load_progress(resume_from, session, generator, ema, adaptive)
        resumed_path = str(resume_from)
    session.adaptive = adaptive
    session.auditions = None if session.sharded else prepare_auditions(session)  # rank 0 alone cannot run FSDP
    events = _events(session, control, progress, tracker, ema, generator, output_dir, resumed_path)
    if session.dist.is_main:
        yield from events
    else:  # other data-parallel ranks compute the same run silently; rank 0 reports and saves
        for _ in events:
            pass
    barrier(session.dist)


def _checkpoint_to_resume(resume_from: str | None, output_dir: Path) -> tuple[Path | None, list[Warned]]:
    """The checkpoint folder to continue from; `latest` in a run that saved none yet starts afresh, and says so."""
    if resume_from is None:
        return None, []
    if resume_from != "latest":
        return Path(resume_from), []
    latest = find_latest(output_dir)
    if latest is None:
        return None, [Warned("nothing-to-resume", f"{output_dir} has no complete checkpoint yet: starting from step 0")]
    return latest, []


def _adaptive_sampler(config: RunConfig) -> AdaptiveTimesteps | None:
    ratio = config.objective.adaptive_timestep_ratio
    if ratio <= 0 or config.objective.timesteps == TimestepMode.DISCRETE:
        return None  # the discrete schedule has no continuous t to adapt
    return AdaptiveTimesteps(ratio)


def _events(session, control, progress, tracker, ema, generator, output_dir, resumed_path) -> Iterator[Event]:
    yield from session.warnings
    yield TrainStarted(asdict(session.plan), resumed_path)
    if resumed_path is None:  # the untrained baseline: what every later eval is compared with
        yield EvalDone(0, _eval_value(session, None), False)
    if session.auditions is not None and session.config.audition.include_base:
        yield from session.auditions.render(session, ema, progress.step, progress.epoch, base=True)
    yield from _train(session, control, progress, tracker, ema, generator, output_dir)


def _train(session: Session, control: Control, progress: Progress, tracker: BestTracker, ema: EMA | None,
           generator: torch.Generator, output_dir: Path) -> Iterator[Event]:
    config, plan = session.config, session.plan
    decoder = session.model.decoder
    decoder.train()
    counters = Counters()
    scaler = torch.amp.GradScaler(enabled=session.compute_dtype == torch.float16)
    autocast = mixed_precision(session.device, session.compute_dtype)
    while progress.epoch < config.loop.epochs:
        coverage = Coverage.from_state(progress.coverage_at_epoch_start)
        global_batch = config.data.batch_size * session.dist.world_size
        batches = plan_epoch(session.lengths, session.train_indices, epoch=progress.epoch, seed=config.loop.seed,
                             batch_size=global_batch, crop_frames=config.data.crop_frames,
                             bucketing=config.data.bucketing, coverage=coverage, repeats=config.data.repeats)
        if session.dist.enabled:
            batches = [batch for batch in batches if len(batch) == global_batch]
        if progress.batches_done > len(batches):
            raise TrainingError(f"the checkpoint is {progress.batches_done} batches into an epoch of "
                                f"{len(batches)}: the data changed since it was saved",
                                fix="resume on the cache the run was made with, or start a new run")
        if progress.step >= plan.total_steps and progress.batches_done < len(batches):
            break  # the plan ended mid-epoch (max_steps): no step is left, and no epoch end either
        finished = False
        for position in range(progress.batches_done, len(batches)):
            epoch_end = position + 1 == len(batches)
            syncs = counters.micro + 1 >= config.optim.grad_accum or epoch_end
            loss = _micro_step(session, batches[position], generator, autocast, scaler, syncs)
            progress.batches_done = position + 1
            if mean_across(0.0 if math.isfinite(loss) else 1.0, session.dist) > 0:
                counters.bad_losses += 1
                session.optimizer.zero_grad(set_to_none=True)
                if session.sharded:
                    drop_unsynced_gradients(session.model.decoder)
                counters.micro, counters.step_loss = 0, 0.0
                yield Warned("non-finite-loss", f"step {progress.step + 1}: loss is {loss}; the micro-batch is dropped")
                if counters.bad_losses >= config.loop.nan_patience:
                    yield from _save(session, progress, tracker, ema, generator, output_dir, "checkpoint")
                    yield Finished("train", "halted", {"step": progress.step, "reason": "non-finite loss"})
                    return
                continue
            counters.bad_losses = 0
            counters.step_loss += loss
            counters.micro += 1
            counters.samples += len(batches[position])
            if counters.micro < config.optim.grad_accum and not epoch_end:
                continue
            yield from _optimizer_step(session, counters, scaler, progress, ema)
            _agree(control, session)
            if control.stop:
                yield from _save(session, progress, tracker, ema, generator, output_dir, "checkpoint")
                yield Finished("train", "stopped", {"step": progress.step})
                return
            if config.loop.eval_every and progress.step % config.loop.eval_every == 0:
                finished = yield from _evaluate(session, progress, tracker, ema, output_dir)
            if session.auditions is not None and session.auditions.due(progress.step):
                yield from session.auditions.render(session, ema, progress.step, progress.epoch)
            if (config.save.save_every and progress.step % config.save.save_every == 0) or control.save_now:
                control.save_now = False
                yield from _save(session, progress, tracker, ema, generator, output_dir, "checkpoint")
            if finished or progress.step >= plan.total_steps:
                finished = True
                break
        if progress.batches_done == len(batches):
            progress.finish_epoch(coverage)
            if not config.loop.eval_every and (yield from _evaluate(session, progress, tracker, ema, output_dir)):
                finished = True
            if session.auditions is not None and session.auditions.due(progress.step, progress.epoch):
                yield from session.auditions.render(session, ema, progress.step, progress.epoch)
        if finished:
            break
    if progress.step == 0:
        raise TrainingError("training ended without a single optimizer step",
                            fix="check that the cache has samples and the plan has steps")
    yield from _save(session, progress, tracker, ema, generator, output_dir, "checkpoint")
    yield from _save_inference(session, progress, ema, output_dir / "final", "final")
    if session.auditions is not None and session.auditions.last_step != progress.step:
        yield from session.auditions.render(session, ema, progress.step, progress.epoch)  # how the final adapter sounds
    yield Finished("train", "complete", {"step": progress.step, "best_step": tracker.best_step,
                                         "best_loss": None if math.isinf(tracker.best) else tracker.best})


def _micro_step(session: Session, global_items, generator: torch.Generator, autocast, scaler, syncs: bool) -> float:
    """Forward and backward of this rank's share of one global micro-batch; returns its loss."""
    config = session.config
    size, rank = config.data.batch_size, session.dist.rank
    items = global_items[rank * size:(rank + 1) * size]
    frames = max(item.frames for item in global_items)
    condition = max(session.reader.entries[item.index].condition_length for item in global_items)
    batch = collate(session.reader, items, session.silence_latent, pad_frames=frames, pad_condition=condition)
    batch = batch.to(session.device, session.compute_dtype)
    discrete = config.objective.timesteps == TimestepMode.DISCRETE
    shape = torch.Size([len(global_items), *batch.target_latents.shape[1:]])
    whole = draw(len(global_items), shape, generator, discrete=discrete)  # the global batch's draws, then our rows
    rows = slice(rank * size, rank * size + len(items))
    draws = type(whole)(whole.cfg_u[rows], whole.noise[rows], whole.n_t[rows], whole.n_r[rows])
    model_config = session.model.config
    t_all = timesteps_from(whole, discrete=discrete, mu=model_config.timestep_mu, sigma=model_config.timestep_sigma)
    if session.adaptive is not None:
        t_all = session.adaptive.apply(t_all, generator)
    t = t_all[rows]
    weights = None
    if config.objective.loss_weighting == LossWeighting.MIN_SNR:
        weights = min_snr_weights(t, config.objective.snr_gamma).to(session.device)
    draws_on_device = type(draws)(draws.cfg_u.to(session.device), draws.noise.to(session.device), draws.n_t, draws.n_r)
    with no_sync(session.forward_decoder, skip=not syncs):
        with autocast:
            out = velocity_loss(session.forward_decoder, session.model.null_condition_emb, batch.target_latents,
                                batch.frame_mask, batch.encoder_hidden_states, batch.encoder_mask,
                                batch.context_latents, draws_on_device, t=t.to(session.device),
                                cfg_ratio=config.objective.cfg_ratio, weights=weights)
        loss = out.loss.float()
        if not torch.isfinite(loss) and not session.dist.enabled:
            return float(loss.item())
        # Data-parallel ranks all run backward, even on a non-finite loss: a rank that skipped it would
        # leave the others waiting in the gradient all-reduce. The step is then dropped on every rank.
        scaler.scale(loss / config.optim.grad_accum).backward()
    # the adaptive bins learn only from micro-batches that every rank keeps (a NaN would poison them for good)
    if session.adaptive is not None and mean_across(0.0 if torch.isfinite(loss) else 1.0, session.dist) == 0:
        sums, counts = session.adaptive.bin_totals(t, out.per_sample)
        session.adaptive.update(sum_across(sums, session.dist), sum_across(counts, session.dist))
    return float(loss.item())


def _optimizer_step(session: Session, counters: Counters, scaler, progress, ema) -> Iterator[Event]:
    config = session.config
    params = list(session.adapter.trainable_parameters.values())
    scaler.unscale_(session.optimizer)
    # with FSDP the norm is over every rank's shards; `replicated` makes it a plain tensor
    grad_norm = replicated(torch.nn.utils.clip_grad_norm_(params, config.optim.max_grad_norm)
                           if config.optim.max_grad_norm > 0 else
                           torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]))
    heavy = config.log.heavy_every and (progress.step + 1) % config.log.heavy_every == 0
    layer_norms = _layer_grad_norms(session) if heavy else None
    scaler.step(session.optimizer)
    scaler.update()
    session.scheduler.step()
    session.optimizer.zero_grad(set_to_none=True)
    progress.step += 1
    if ema is not None:
        ema.update()
    # the true mean over the step's micro-batches (and over the data-parallel ranks)
    loss = mean_across(counters.step_loss / counters.micro, session.dist)
    elapsed = time.perf_counter() - counters.started
    if progress.step % max(config.log.log_every, 1) == 0 or progress.step == 1:
        peak = torch.cuda.max_memory_allocated(session.device) / 2**30 if session.device.type == "cuda" else 0.0
        yield StepDone(progress.step, progress.epoch, loss, session.scheduler.get_last_lr()[0], float(grad_norm),
                       counters.samples / max(elapsed, 1e-9), peak)
    else:  # every optimizer step is reported, so progress bars and ETAs advance step by step
        yield Progressed(progress.step, session.plan.total_steps, f"step {progress.step}")
    if layer_norms is not None:
        yield LayerGradNorms(progress.step, layer_norms)
    progress.last_loss = loss
    counters.step_loss, counters.micro = 0.0, 0


def _agree(control: Control, session: Session) -> None:
    """A stop or save request made on any data-parallel rank is acted on by every rank, at the same step."""
    if session.dist.enabled:
        flags = sum_across(torch.tensor([float(control.stop), float(control.save_now)]), session.dist)
        control.stop, control.save_now = bool(flags[0] > 0), bool(flags[1] > 0)


def _layer_grad_norms(session: Session) -> dict[str, float]:
    sums: dict[str, float] = {}
    for name, param in session.adapter.trainable_parameters.items():
        parts = name.split(".")
        key = ".".join(parts[:parts.index("layers") + 2]) if "layers" in parts else parts[0]
        if param.grad is None:
            if session.sharded:  # every rank reduces the same keys
                sums.setdefault(key, 0.0)
            continue
        # with FSDP this rank's shard: the squares add up over the ranks
        sums[key] = sums.get(key, 0.0) + float(local_shard(param.grad).float().pow(2).sum())
    if session.sharded:
        keys = sorted(sums)
        totals = sum_across(torch.tensor([sums[k] for k in keys], dtype=torch.float64), session.dist)
        sums = dict(zip(keys, totals.tolist()))
    return {k: math.sqrt(v) for k, v in sorted(sums.items())}


def _eval_value(session: Session, ema: EMA | None) -> float:
    config = session.config
    with ema.applied() if ema is not None else nullcontext():
        value = eval_loss(session.model.decoder, session.model.null_condition_emb, session.reader,
                          session.eval_indices, session.silence_latent, crop_frames=config.data.crop_frames,
                          timesteps=config.loop.eval_timesteps, seed=config.loop.eval_seed, device=session.device,
                          dtype=session.compute_dtype)
    return mean_across(value, session.dist)  # one value on every rank: best saves and early stops stay in step


def _evaluate(session: Session, progress, tracker: BestTracker, ema, output_dir: Path):
    config = session.config
    value = _eval_value(session, ema)
    metric = value if config.loop.best_metric == BestMetric.EVAL else tracker.smoothed(progress.last_loss)
    is_best, should_stop = tracker.observe(progress.step, metric)
    yield EvalDone(progress.step, value, is_best)
    if is_best:
        yield from _save_inference(session, progress, ema, output_dir / "best", "best")
    return should_stop


def _metadata(session: Session, progress) -> dict[str, str]:
    return adapter_metadata(variant=session.plan.variant, fingerprint=session.cache_fingerprint,
                            trigger=session.trigger, adapter_kind=session.config.adapter.kind.value,
                            step=progress.step, base_model=session.dit_folder.name,
                            compute_dtype=session.compute_dtype, rope_dtype=session.config.loop.rope_dtype.value)


def _save_inference(session: Session, progress, ema, folder: Path, kind: str) -> Iterator[Event]:
    if not (session.dist.is_main or session.sharded):
        return
    with ema.applied() if ema is not None else nullcontext():
        adapter = adapter_for_saving(session)  # with FSDP every rank gathers; rank 0 writes
        if adapter is not None:
            save_adapter(adapter, folder, metadata=_metadata(session, progress), overwrite=True)
    if adapter is not None:
        yield Saved(progress.step, folder, kind)


def _save(session: Session, progress, tracker, ema, generator, output_dir: Path, kind: str) -> Iterator[Event]:
    if not (session.dist.is_main or session.sharded):
        return
    state, tensors = progress_state(session, progress, tracker, ema, generator, config_to_dict(session.config),
                                    session.adaptive)  # with FSDP every rank gathers; rank 0 writes
    folder = step_folder(output_dir, progress.step)
    with ema.applied() if ema is not None else nullcontext():
        adapter = adapter_for_saving(session)
        if adapter is not None:
            save_checkpoint(folder, lambda staging: save_adapter(adapter, staging,
                                                                 metadata=_metadata(session, progress),
                                                                 overwrite=True),
                            state, tensors)
    if adapter is None:
        return
    prune_checkpoints(output_dir, session.config.save.keep_last)
    yield Saved(progress.step, folder, kind)


__all__ = ["Control", "run", "check_resumable"]
