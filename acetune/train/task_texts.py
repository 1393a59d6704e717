"""The caption states of each sample under each trained task's instruction, encoded once when a run starts.

The condition encoder packs [lyric states | timbre token | projected caption states], and only the
caption prompt carries the instruction, so another task changes only the tail: the cache's
text2music states keep their lyric and timbre part, and the caption part is re-encoded with the
task's instruction (text encoder, then the condition encoder's `text_projector`). Both models are
loaded once, used for every sample, and freed before training (bench/task_texts.py measures this
against reading per-task states from the cache; docs/training.md, Tasks, gives the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from acetune.config import Task
from acetune.data.cache import CacheReader
from acetune.data.prompts import with_instruction
from acetune.errors import CacheError
from acetune.model.checkpoint import load_model
from acetune.model.devices import forked_rng
from acetune.model.text_encoder import load_text_encoder
from acetune.train.tasks import instruction


@dataclass(frozen=True)
class TaskTexts:
    """Per (cache index, task): the projected caption states [Lt, D] (CPU, float32); text2music is the cache's."""

    captions: dict[tuple[int, Task], torch.Tensor]
    prefix: dict[int, int]  # cache index -> lyric + timbre positions of its packed states

    def length(self, reader: CacheReader, index: int, task: Task) -> int:
        if task == Task.TEXT2MUSIC:
            return reader.entries[index].condition_length
        return self.prefix[index] + self.captions[(index, task)].shape[0]

    def states(self, cached: torch.Tensor, index: int, task: Task) -> torch.Tensor:
        """The packed condition states [L, D] of sample `index` under `task` (`cached`: its text2music states)."""
        if task == Task.TEXT2MUSIC:
            return cached
        return torch.cat([cached[:self.prefix[index]], self.captions[(index, task)].to(cached)])


def encode_task_texts(reader: CacheReader, tasks: tuple[Task, ...], text_encoder_dir: Path, dit_dir: Path, *,
                      options, device: torch.device, dtype: torch.dtype) -> TaskTexts | None:
    """Encode every sample's caption prompt with each task's instruction; None when only text2music is trained."""
    others = [task for task in tasks if task != Task.TEXT2MUSIC]
    if not others:
        return None
    prompts = {index: _prompt(reader, index) for index in range(len(reader))}
    with forked_rng(device):  # loading draws random init weights: the run's RNG must not move
        text_encoder = load_text_encoder(text_encoder_dir, dtype=dtype, device=device)
        projector = load_model(dit_dir, components=("encoder",), dtype=dtype, device=device,
                               options=options).model.encoder.text_projector
        captions = {}
        with torch.no_grad():
            for index, prompt in prompts.items():
                for task in others:
                    hidden = text_encoder.encode_caption(with_instruction(prompt, instruction(task)))
                    captions[(index, task)] = projector(hidden.to(device, dtype)).float().cpu()
        del text_encoder, projector
    prefix = {index: reader.entries[index].condition_length - int(reader.entries[index].metadata["text_length"])
              for index in prompts}
    return TaskTexts(captions, prefix)


def _prompt(reader: CacheReader, index: int) -> str:
    entry = reader.entries[index]
    if "prompt" not in entry.metadata or "text_length" not in entry.metadata:
        raise CacheError(f"the cache does not record the caption prompt of {entry.id}, which task training re-encodes",
                         path=Path(reader.folder), fix="preprocess the songs again with this acetune version")
    return entry.metadata["prompt"]
