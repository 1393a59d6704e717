"""The source song of an edit task (repaint, cover): its latents, the span to repaint, the context latents.

The context is built by the same function training uses (`data.encoding.task_source`), so a task
means at generation time exactly what it meant in training; the cover hints come from the model's
own tokenizer and detokenizer (`AceStepModel.context_latents`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.audio import LATENT_FRAMES_PER_SECOND, load_audio
from acetune.config import Task
from acetune.data.encoding import check_encodable, sample_generator, task_source, text2music_context
from acetune.errors import ConfigError
from acetune.model.acestep import AceStepModel
from acetune.model.vae import encode_latents

SOURCE_TASKS = (Task.REPAINT, Task.COVER)


@dataclass(frozen=True)
class Source:
    task: Task
    latents: torch.Tensor  # [T, C] float32, CPU
    path: Path
    span: tuple[int, int] | None = None  # repaint: frames [start, end)

    @property
    def duration_s(self) -> float:
        return self.latents.shape[0] / LATENT_FRAMES_PER_SECOND


def repaint_frames(start_s: float | None, end_s: float | None, frames: int, path: Path) -> tuple[int, int]:
    """The repaint span in frames; a missing, reversed or out-of-song span is a named error."""
    seconds = frames / LATENT_FRAMES_PER_SECOND
    if start_s is None or end_s is None:
        raise ConfigError("--task repaint needs --start and --end (seconds into the source song)", path=path,
                          fix="e.g. --start 10 --end 20")
    if not 0 <= start_s < end_s <= seconds + 1e-6:
        raise ConfigError(f"the repaint span {start_s:g}-{end_s:g} s is not inside the song (0-{seconds:.2f} s)",
                          path=path, fix=f"choose 0 <= --start < --end <= {seconds:.2f}")
    return round(start_s * LATENT_FRAMES_PER_SECOND), min(round(end_s * LATENT_FRAMES_PER_SECOND), frames)


def load_source(task: Task, path: Path, vae, *, start_s: float | None = None, end_s: float | None = None,
                max_duration_s: float = 600.0) -> Source:
    """Read and VAE-encode the source song (the posterior mean: a fixed source for every take)."""
    if task not in SOURCE_TASKS:
        raise ConfigError(f"--src is for --task repaint or cover, not {task.value}", path=path,
                          fix="drop --src, or pass --task repaint / --task cover")
    audio = load_audio(path, max_duration_s=max_duration_s)
    check_encodable(audio.waveform, path)
    latents = encode_latents(vae, torch.from_numpy(audio.waveform), generator=sample_generator(0, str(path)),
                             sample=False).float().cpu()
    span = repaint_frames(start_s, end_s, latents.shape[0], path) if task == Task.REPAINT else None
    return Source(task, latents, path, span)


def source_context(model: AceStepModel, source: Source, frames: int, silence_latent: torch.Tensor) -> torch.Tensor:
    """Context latents [frames, 2C] of the task (frames past the song keep the text2music context)."""
    context = text2music_context(silence_latent, frames)
    channels = source.latents.shape[-1]
    length = min(frames, source.latents.shape[0])
    src, mask = task_source(source.latents[:length], context[:length, :channels], repaint=source.span,
                            cover=source.task == Task.COVER)
    context[:length] = torch.cat([src, mask], dim=-1)
    if source.task != Task.COVER:
        return context
    weight = next(model.detokenizer.parameters())  # the parts a cover needs are loaded (and where they are)
    covers = torch.ones(1, dtype=torch.long, device=weight.device)
    whole = model.context_latents(context[None, :, :channels].to(weight.device, weight.dtype),
                                  context[None, :, channels:].to(weight.device, weight.dtype), covers,
                                  silence_latent.to(weight.device), torch.ones(1, frames, device=weight.device))
    return whole[0].float().cpu()
