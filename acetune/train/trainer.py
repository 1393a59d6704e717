"""The step loop of a run: epochs of planned batches, micro-steps, optimizer steps, and what follows a step.

The objective (`objective.py`) owns the loss and its draws, the strategy (`strategy.py`) what data
parallelism changes, `RunState` (`resume.py`) what a resume restores, `saving.py` what is written.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Iterator

import torch

from acetune.config import BestMetric
from acetune.errors import TrainingError
from acetune.events import Event, EvalDone, Finished, LayerGradNorms, Progressed, StepDone, TrainStarted, Warned
from acetune.model.devices import mixed_precision
from acetune.train.batching import Coverage, Item, collate, plan_epoch
from acetune.train.evaluation import eval_loss
from acetune.train.resume import RunState
from acetune.train.saving import save_inference, save_resumable
from acetune.train.strategy import Replicated


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


class Outcome(Enum):
    FINISHED = "finished"  # the plan is done (or early stopping): save the final adapter
    ENDED = "ended"  # stopped or halted: `Finished` was already reported


def agree(control: Control, strategy: Replicated) -> None:
    """A stop or save request made on any data-parallel rank is acted on by every rank, at the same step."""
    if strategy.dist.enabled:
        flags = strategy.sum(torch.tensor([float(control.stop), float(control.save_now)]))
        control.stop, control.save_now = bool(flags[0] > 0), bool(flags[1] > 0)


class Trainer:
    def __init__(self, state: RunState, control: Control, auditions, output_dir: Path):
        self.state, self.objective, self.control, self.auditions = state, state.objective, control, auditions
        self.session, self.output_dir = state.session, output_dir
        self.config, self.strategy = self.session.config, self.session.strategy
        self.counters = Counters()
        self.scaler = torch.amp.GradScaler(enabled=self.session.compute_dtype == torch.float16)
        self.autocast = mixed_precision(self.session.device, self.session.compute_dtype)

    @property
    def progress(self):
        return self.state.progress

    def events(self, resumed_path: str | None) -> Iterator[Event]:
        session = self.session
        yield from session.warnings
        yield TrainStarted(asdict(session.plan), resumed_path)
        if resumed_path is None:  # the untrained baseline: what every later eval is compared with
            yield EvalDone(0, self._eval_value(), False)
        if self.auditions is not None and self.config.audition.include_base:
            yield from self._audition(base=True)
        yield from self._train()

    def _train(self) -> Iterator[Event]:
        self.session.model.decoder.train()
        while self.progress.epoch < self.config.loop.epochs:
            coverage = Coverage.from_state(self.progress.coverage_at_epoch_start)
            batches = self._plan_epoch(coverage)
            if self.progress.step >= self.session.plan.total_steps and self.progress.batches_done < len(batches):
                break  # the plan ended mid-epoch (max_steps): no step is left, and no epoch end either
            outcome = yield from self._run_batches(batches)
            if outcome == Outcome.ENDED:
                return
            if self.progress.batches_done == len(batches) and (yield from self._end_epoch(coverage)):
                outcome = Outcome.FINISHED
            if outcome == Outcome.FINISHED:
                break
        yield from self._finish()

    def _plan_epoch(self, coverage: Coverage) -> list[list[Item]]:
        config, session, progress = self.config, self.session, self.progress
        global_batch = config.data.batch_size * self.strategy.dist.world_size
        batches = plan_epoch(session.data.lengths, session.data.train_indices, epoch=progress.epoch,
                             seed=config.loop.seed, batch_size=global_batch, crop_frames=config.data.crop_frames,
                             bucketing=config.data.bucketing, coverage=coverage, repeats=config.data.repeats)
        if self.strategy.dist.enabled:
            batches = [batch for batch in batches if len(batch) == global_batch]
        if progress.batches_done > len(batches):
            raise TrainingError(f"the checkpoint is {progress.batches_done} batches into an epoch of "
                                f"{len(batches)}: the data changed since it was saved",
                                fix="resume on the cache the run was made with, or start a new run")
        return batches

    def _run_batches(self, batches: list[list[Item]]) -> Iterator[Event]:
        for position in range(self.progress.batches_done, len(batches)):
            outcome = yield from self._step(batches[position], epoch_end=position + 1 == len(batches))
            if outcome is not None:
                return outcome
        return None

    def _step(self, items: list[Item], epoch_end: bool) -> Iterator[Event]:
        """One micro-batch; an optimizer step when it completes an accumulation group (or the epoch)."""
        counters, accum = self.counters, self.config.optim.grad_accum
        loss = self._micro_step(items, syncs=counters.micro + 1 >= accum or epoch_end)
        self.progress.batches_done += 1
        if self.strategy.any_rank(not math.isfinite(loss)):
            return (yield from self._drop(loss))
        counters.bad_losses = 0
        counters.step_loss += loss
        counters.micro += 1
        counters.samples += len(items)
        if counters.micro < accum and not epoch_end:
            return None
        yield from self._optimizer_step()
        return (yield from self._after_step())

    def _micro_step(self, items: list[Item], syncs: bool) -> float:
        """Forward and backward of this rank's share of one global micro-batch; returns its loss."""
        batch = self._collate(items)
        with self.strategy.no_sync(skip=not syncs):
            with self.autocast:
                out = self.objective.loss(self.session.denoiser(), batch, self.state.generator)
            loss = out.loss.float()
            if not torch.isfinite(loss) and not self.strategy.dist.enabled:
                return float(loss.item())
            # Data-parallel ranks all run backward, even on a non-finite loss: a rank that skipped it would
            # leave the others waiting in the gradient all-reduce. The step is then dropped on every rank.
            self.scaler.scale(loss / self.config.optim.grad_accum).backward()
        # the adaptive bins learn only from micro-batches that every rank keeps (a NaN would poison them for good)
        if self.objective.adapts and not self.strategy.any_rank(not bool(torch.isfinite(loss))):
            self.objective.learn(out, self.strategy.sum)
        return float(loss.item())

    def _collate(self, global_items: list[Item]):
        """This rank's rows of a global micro-batch, padded as the whole global batch is."""
        session, size, rank = self.session, self.config.data.batch_size, self.strategy.dist.rank
        reader, texts, tasks = session.reader, session.task_texts, self.objective.tasks.tasks
        frames = max(item.frames for item in global_items)
        condition = max(reader.entries[item.index].condition_length if texts is None else
                        max(texts.length(reader, item.index, task) for task in tasks) for item in global_items)
        batch = collate(reader, global_items[rank * size:(rank + 1) * size], session.silence_latent,
                        pad_frames=frames, pad_condition=condition, task_texts=texts, tasks=tasks)
        batch = replace(batch, offset=rank * size, global_size=len(global_items))
        return batch.to(session.device, session.compute_dtype)

    def _drop(self, loss: float) -> Iterator[Event]:
        """A non-finite loss on any rank: the accumulation group is dropped; too many in a row halt the run."""
        counters = self.counters
        counters.bad_losses += 1
        self.session.optimizer.zero_grad(set_to_none=True)
        self.strategy.drop_unsynced()
        counters.micro, counters.step_loss = 0, 0.0
        yield Warned("non-finite-loss", f"step {self.progress.step + 1}: loss is {loss}; the micro-batch is dropped")
        if counters.bad_losses < self.config.loop.nan_patience:
            return None
        yield from save_resumable(self.state, self.output_dir)
        yield Finished("train", "halted", {"step": self.progress.step, "reason": "non-finite loss"})
        return Outcome.ENDED

    def _optimizer_step(self) -> Iterator[Event]:
        session, config, progress, counters = self.session, self.config, self.progress, self.counters
        params = list(session.adapter.trainable_parameters.values())
        self.scaler.unscale_(session.optimizer)
        grad_norm = _clipped_norm(params, config.optim.max_grad_norm)
        heavy = config.log.heavy_every and (progress.step + 1) % config.log.heavy_every == 0
        layer_norms = self.strategy.layer_grad_norms() if heavy else None
        self.scaler.step(session.optimizer)
        self.scaler.update()
        session.scheduler.step()
        session.optimizer.zero_grad(set_to_none=True)
        progress.step += 1
        if self.state.ema is not None:
            self.state.ema.update()
        # the true mean over the step's micro-batches (and over the data-parallel ranks)
        loss = self.strategy.mean(counters.step_loss / counters.micro)
        elapsed = time.perf_counter() - counters.started
        if progress.step % max(config.log.log_every, 1) == 0 or progress.step == 1:
            device = session.device
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
            yield StepDone(progress.step, progress.epoch, loss, session.scheduler.get_last_lr()[0], float(grad_norm),
                           counters.samples / max(elapsed, 1e-9), peak)
        else:  # every optimizer step is reported, so progress bars and ETAs advance step by step
            yield Progressed(progress.step, session.plan.total_steps, f"step {progress.step}")
        if layer_norms is not None:
            yield LayerGradNorms(progress.step, layer_norms)
        progress.last_loss = loss
        counters.step_loss, counters.micro = 0.0, 0

    def _after_step(self) -> Iterator[Event]:
        """Stop requests, evaluation, auditions and saves at an optimizer step's boundary."""
        config, progress, control = self.config, self.progress, self.control
        agree(control, self.strategy)
        if control.stop:
            yield from save_resumable(self.state, self.output_dir)
            yield Finished("train", "stopped", {"step": progress.step})
            return Outcome.ENDED
        finished = False
        if config.loop.eval_every and progress.step % config.loop.eval_every == 0:
            finished = yield from self._evaluate()
        if self.auditions is not None and self.auditions.due(progress.step):
            yield from self._audition()
        if (config.save.save_every and progress.step % config.save.save_every == 0) or control.save_now:
            control.save_now = False
            yield from save_resumable(self.state, self.output_dir)
        return Outcome.FINISHED if finished or progress.step >= self.session.plan.total_steps else None

    def _end_epoch(self, coverage: Coverage) -> Iterator[Event]:
        """Returns whether early stopping ends the run."""
        self.progress.finish_epoch(coverage)
        stop = False
        if not self.config.loop.eval_every:
            stop = yield from self._evaluate()
        if self.auditions is not None and self.auditions.due(self.progress.step, self.progress.epoch):
            yield from self._audition()
        return stop

    def _finish(self) -> Iterator[Event]:
        progress, tracker = self.progress, self.state.tracker
        if progress.step == 0:
            raise TrainingError("training ended without a single optimizer step",
                                fix="check that the cache has samples and the plan has steps")
        yield from save_resumable(self.state, self.output_dir)
        yield from save_inference(self.state, self.output_dir / "final", "final")
        if self.auditions is not None and self.auditions.last_step != progress.step:
            yield from self._audition()  # how the final adapter sounds
        yield Finished("train", "complete", {"step": progress.step, "best_step": tracker.best_step,
                                             "best_loss": None if math.isinf(tracker.best) else tracker.best})

    def _audition(self, base: bool = False) -> Iterator[Event]:
        yield from self.auditions.render(self.session, self.state.ema, self.progress.step, self.progress.epoch,
                                         base=base)

    def _eval_value(self) -> float:
        session, config, ema = self.session, self.config, self.state.ema
        with ema.applied() if ema is not None else nullcontext():
            value = eval_loss(session.model.decoder, session.model.null_condition_emb, session.reader,
                              session.data.eval_indices, session.silence_latent, crop_frames=config.data.crop_frames,
                              timesteps=config.loop.eval_timesteps, seed=config.loop.eval_seed,
                              device=session.device, dtype=session.compute_dtype)
        return self.strategy.mean(value)  # one value on every rank: best saves and early stops stay in step

    def _evaluate(self) -> Iterator[Event]:
        """Eval loss, best tracking and early stopping; returns whether to stop."""
        progress, tracker = self.progress, self.state.tracker
        value = self._eval_value()
        metric = value if self.config.loop.best_metric == BestMetric.EVAL else tracker.smoothed(progress.last_loss)
        is_best, should_stop = tracker.observe(progress.step, metric)
        yield EvalDone(progress.step, value, is_best)
        if is_best:
            yield from save_inference(self.state, self.output_dir / "best", "best")
        return should_stop


def _clipped_norm(params: list[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """The global gradient norm, clipping to `max_norm` (> 0); with FSDP over every rank's shards."""
    from acetune.train.sharding import replicated

    norm = (torch.nn.utils.clip_grad_norm_(params, max_norm) if max_norm > 0 else
            torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]))
    return replicated(norm)  # a plain tensor of a DTensor
