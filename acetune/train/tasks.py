"""Task conditioning: the instruction, source latents, chunk mask and `is_covers` of each training sample.

ACE-Step 1.5 selects its task by the instruction line of the caption prompt and by the context
latents (source latents + chunk mask). Training a task builds them per sample exactly as the
official pipeline does at inference (spec model.md §5.1 and §7.1), with the song's own latents as
the target:

- text2music: `Fill the audio semantic mask based on the given conditions:`; source = the silence
  latent, chunk mask all ones, `is_covers` 0.
- repaint: `Repaint the mask area based on the given conditions:`; chunk mask 1 inside the span to
  regenerate and 0 elsewhere; source = the song with the span replaced by the silence latent's frames
  at the same positions; `is_covers` 0.
- cover: `Generate audio semantic tokens based on the given conditions:`; source = the song, chunk
  mask all ones, `is_covers` 1, so the model replaces the source by its tokenize -> detokenize hints.
  The hints are computed on the training crop, which is the sample's whole source here. The official
  pipeline tokenizes the whole source song, and its tokenizer and detokenizer work inside 5-frame
  windows only (an attention pooler per window, a detokenizer per token), so a crop's hints equal the
  whole song's at those frames when the crop starts on the 5-frame grid, and otherwise are the same
  music pooled with another phase: the official hints of that crop given as a source (its last
  partial window filled with silence-latent frames, as upstream). Tokenizing the whole
  song instead would need every song's full latents at every step for hints the crop never sees
  (tests/train/test_tasks.py pins the grid equality).
- extract / complete need stems (the target is a stem, or the full mix of a partial one): a cache
  without stems cannot train them, and says so.

Per sample, a mixed run draws its task from `objective.task_mix`; a repaint span is drawn from the
documented distribution below. All draws come from the run's generator, for the whole global
batch (data-parallel ranks keep their rows), after the objective's own draws, so they are part of
the resumable state and a text2music run draws nothing here.

Repaint spans: for a sample of n real frames, u1, u2 ~ U(0, 1) give a length
L = clamp(round(n * (0.1 + 0.4 * u1)), 1, n) (10 % to 50 % of the sample) and a start
floor(u2 * (n - L + 1)); the span is [start, start + L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from acetune.config import ObjectiveConfig, Task
from acetune.errors import ConfigError
from acetune.data.encoding import task_source
from acetune.data.prompts import TASK_INSTRUCTIONS

REPAINT_SHARE = (0.1, 0.5)  # shortest and longest repaint span, as shares of the sample's real frames
MIXABLE = (Task.TEXT2MUSIC, Task.REPAINT, Task.COVER, Task.EXTRACT, Task.COMPLETE)
NEEDS_STEMS = (Task.EXTRACT, Task.COMPLETE)


def trained_tasks(config: ObjectiveConfig) -> tuple[Task, ...]:
    """The tasks a run trains: its one task, or those with a positive weight in `task_mix`."""
    if config.task != Task.MIXED:
        return (config.task,)
    return tuple(task for task in MIXABLE if getattr(config.task_mix, task.value) > 0)


COVER_MODULES = ("tokenizer", "detokenizer")  # the frozen model parts that turn a source song into cover hints


def task_modules(tasks) -> tuple[str, ...]:
    """The frozen model parts a run or a render must load for these tasks (cover: the tokenizer and detokenizer)."""
    return COVER_MODULES if Task.COVER in tasks else ()


def instruction(task: Task) -> str:
    return TASK_INSTRUCTIONS[task.value]


@dataclass(frozen=True)
class TaskInputs:
    """One micro-batch's task conditioning (this rank's rows)."""

    tasks: tuple[Task, ...]  # per sample
    spans: tuple[tuple[int, int], ...]  # per sample: the repaint span [start, end), (0, 0) for other tasks
    src_latents: torch.Tensor  # [B, T, C]
    chunk_masks: torch.Tensor  # [B, T, C]
    is_covers: torch.Tensor  # [B] long


class TaskSampler:
    """Draws each sample's task and repaint span, and builds its source latents and chunk mask."""

    def __init__(self, config: ObjectiveConfig):
        self.tasks = trained_tasks(config)
        weights = [getattr(config.task_mix, task.value) if config.task == Task.MIXED else 1.0 for task in self.tasks]
        total = sum(weights)
        self.cumulative = [sum(weights[:i + 1]) / total for i in range(len(weights))]

    @property
    def draws(self) -> bool:
        """Does it draw anything? (a text2music run leaves the generator as it was)"""
        return self.tasks != (Task.TEXT2MUSIC,)

    def draw(self, global_size: int, rows: slice, rng: torch.Generator) -> tuple[list[Task], torch.Tensor]:
        """(task per row, [rows, 2] span uniforms): drawn for the whole global batch, then this rank's rows."""
        if not self.draws:
            return [Task.TEXT2MUSIC] * (rows.stop - rows.start), torch.zeros(rows.stop - rows.start, 2)
        u = torch.rand(global_size, 3, generator=rng, dtype=torch.float64)[rows]
        tasks = [self.tasks[next(i for i, edge in enumerate(self.cumulative) if value < edge or
                                 i == len(self.cumulative) - 1)] for value in u[:, 0].tolist()]
        return tasks, u[:, 1:]

    def inputs(self, tasks: list[Task], uniforms: torch.Tensor, target: torch.Tensor,
               context: torch.Tensor) -> TaskInputs:
        """Source latents, chunk masks and cover flags of each row.

        `context` [B, T, 2C] is the text2music context the batch was collated with: the silence
        latent's frames at the crop's positions and a chunk mask of ones over the real frames
        (zeros where the row is padded). Repaint and cover rows put the song in the source.
        """
        channels = target.shape[-1]
        src, masks = context[..., :channels].clone(), context[..., channels:].clone()
        spans = []
        for row, task in enumerate(tasks):
            real = int(masks[row, :, 0].sum())
            span = repaint_span(real, *uniforms[row].tolist()) if task == Task.REPAINT else (0, 0)
            spans.append(span)
            if task in (Task.REPAINT, Task.COVER):
                src[row, :real], masks[row, :real] = task_source(
                    target[row, :real], src[row, :real], repaint=span if task == Task.REPAINT else None,
                    cover=task == Task.COVER)
        covers = torch.tensor([int(task == Task.COVER) for task in tasks], dtype=torch.long)
        return TaskInputs(tuple(tasks), tuple(spans), src, masks, covers)


def repaint_span(frames: int, u_length: float, u_start: float) -> tuple[int, int]:
    """The documented repaint span of a sample with `frames` real frames (see the module docstring)."""
    low, high = REPAINT_SHARE
    length = min(max(round(frames * (low + (high - low) * u_length)), 1), frames)
    start = min(math.floor(u_start * (frames - length + 1)), frames - length)  # u < 1 always; 1 stays inside
    return start, start + length


# Which variant does which task: turbo renders text2music, repaint and cover; extract, lego and complete
# are base/SFT tasks (upstream ACE-Step 1.5 documentation, "base model only"; the spec lists the
# instructions, model.md §7.1, but not this split).
VARIANT_TASKS = {
    "turbo": (Task.TEXT2MUSIC, Task.REPAINT, Task.COVER),
    "base": (Task.TEXT2MUSIC, Task.REPAINT, Task.COVER, Task.EXTRACT, Task.COMPLETE),
    "sft": (Task.TEXT2MUSIC, Task.REPAINT, Task.COVER, Task.EXTRACT, Task.COMPLETE),
}


def check_tasks(tasks: tuple[Task, ...], variant_kind: str | None, has_stems: bool = False) -> None:
    """Refuse, by name, a task the model variant cannot do or the data cannot train."""
    supported = VARIANT_TASKS.get(variant_kind or "", VARIANT_TASKS["base"])
    for task in tasks:
        if task not in supported:
            raise ConfigError(f"objective.task: the {variant_kind} model does not do {task.value} (it does "
                              f"{', '.join(t.value for t in supported)})",
                              fix=f"train {task.value} on the base or sft model (--model acestep-v15-base), "
                                  "or drop it from the task mix")
        if task in NEEDS_STEMS and not has_stems:
            raise ConfigError(f"objective.task: {task.value} needs stems (each song's separate tracks), and the "
                              "cache has none", fix=f"train text2music, repaint or cover, or set "
                                                    f"objective.task_mix.{task.value} = 0")
