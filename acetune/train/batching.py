"""From a cache to training batches: crops, coverage, length buckets, padding and masks.

All randomness of an epoch is decided up front by `plan_epoch` from (seed, epoch) and the
coverage counts at the start of the epoch, so a resumed run rebuilds the identical plan and
skips the batches it already did. Crops are applied to every per-frame tensor with the same
window; conditions are never cropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from acetune.data.cache import CacheReader
from acetune.data.encoding import text2music_context


def crop_length(crop_frames: int, song_frames: int) -> int:
    """Frames a crop takes from a song: `data.crop_frames`, or the whole song when it is 0 or the song is shorter."""
    return song_frames if crop_frames <= 0 else min(crop_frames, song_frames)


@dataclass(frozen=True)
class Item:
    index: int  # cache index
    start: int  # first frame of the crop
    frames: int  # crop length


@dataclass
class Coverage:
    """How often each part of each song was used: offsets prefer rarely used bins (weight 1/(hits+1))."""

    bins: int
    hits: dict[int, list[int]] = field(default_factory=dict)

    def choose_start(self, index: int, span: int, rng: random.Random) -> int:
        """A crop start in [0, span] (span = T - crop)."""
        counts = self.hits.setdefault(index, [0] * self.bins)
        weights = [1.0 / (h + 1) for h in counts]
        chosen = rng.choices(range(self.bins), weights=weights)[0]
        counts[chosen] += 1
        low = chosen * (span + 1) // self.bins
        high = max(low, (chosen + 1) * (span + 1) // self.bins - 1)
        return rng.randint(low, high)

    def state(self) -> dict:
        return {"bins": self.bins, "hits": {str(k): v for k, v in self.hits.items()}}

    @classmethod
    def from_state(cls, state: dict) -> "Coverage":
        return cls(state["bins"], {int(k): list(v) for k, v in state["hits"].items()})


def plan_epoch(lengths: list[int], indices: list[int], *, epoch: int, seed: int, batch_size: int, crop_frames: int,
               bucketing: bool, coverage: Coverage, repeats: int = 1) -> list[list[Item]]:
    """The epoch's batches: shuffled order, crop windows, then length buckets (shuffled as batches)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = [i for _ in range(repeats) for i in indices]
    rng.shuffle(order)
    items = []
    for index in order:
        total = lengths[index]
        frames = crop_length(crop_frames, total)
        start = coverage.choose_start(index, total - frames, rng) if frames < total else 0
        items.append(Item(index, start, frames))
    if bucketing:
        items.sort(key=lambda item: item.frames)  # stable: equal lengths keep the shuffled order
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if bucketing:
        rng.shuffle(batches)
    return batches


@dataclass
class Batch:
    target_latents: torch.Tensor  # [B, T, C]
    frame_mask: torch.Tensor  # [B, T]
    context_latents: torch.Tensor  # [B, T, 2C]
    encoder_hidden_states: torch.Tensor  # [B, L, D]
    encoder_mask: torch.Tensor  # [B, L]
    ids: list[str]
    # Data parallel: this rank's rows of the global micro-batch of `global_size` samples, whose random
    # draws every rank makes whole (0 = the batch is the whole global batch).
    offset: int = 0
    global_size: int = 0
    # Task training: the packed condition states (and masks) of every row under each other trained task,
    # padded like `encoder_hidden_states` (`TaskTexts`); the objective picks each row's task
    task_conditions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.global_size = self.global_size or self.size

    def to(self, device: torch.device, dtype: torch.dtype) -> "Batch":
        conditions = {task: (states.to(device, dtype), mask.to(device))
                      for task, (states, mask) in self.task_conditions.items()}
        return Batch(self.target_latents.to(device, dtype), self.frame_mask.to(device),
                     self.context_latents.to(device, dtype), self.encoder_hidden_states.to(device, dtype),
                     self.encoder_mask.to(device), self.ids, self.offset, self.global_size, conditions)

    @property
    def size(self) -> int:
        return self.target_latents.shape[0]

    @property
    def rows(self) -> slice:
        return slice(self.offset, self.offset + self.size)


def collate(reader: CacheReader, items: list[Item], silence_latent: torch.Tensor, *,
            pad_frames: int = 0, pad_condition: int = 0, task_texts=None, tasks: tuple = ()) -> Batch:
    """Load, crop and zero-pad (frames and condition tokens), with masks marking the real positions.

    `pad_frames` / `pad_condition` pad further (a data-parallel rank pads to its global batch).
    With `task_texts` (`TaskTexts`), the conditions of each other task in `tasks` come too.
    """
    frames = max(max(item.frames for item in items), pad_frames)
    loaded = [reader.load(item.index) for item in items]
    latents, contexts = [], []
    frame_mask = torch.zeros(len(items), frames, dtype=torch.long)
    for row, (item, tensors) in enumerate(zip(items, loaded)):
        end = item.start + item.frames
        window = tensors["target_latents"][item.start:end].float()  # a view of the mapped shard until here
        context = text2music_context(silence_latent, end)[item.start:]
        pad = frames - item.frames
        latents.append(torch.nn.functional.pad(window, (0, 0, 0, pad)))
        contexts.append(torch.nn.functional.pad(context, (0, 0, 0, pad)))
        frame_mask[row, :item.frames] = 1
    cached = [tensors["encoder_hidden_states"].float() for tensors in loaded]
    others = [task for task in tasks if task_texts is not None and task.value != "text2music"]
    per_task = {task: [task_texts.states(states, item.index, task) for states, item in zip(cached, items)]
                for task in others}
    length = max([pad_condition, *(s.shape[0] for s in cached), *(s.shape[0] for v in per_task.values() for s in v)])
    states, cond_mask = _pad_conditions(cached, length)
    return Batch(torch.stack(latents), frame_mask, torch.stack(contexts), states, cond_mask,
                 [reader.entries[item.index].id for item in items],
                 task_conditions={task: _pad_conditions(rows, length) for task, rows in per_task.items()})


def _pad_conditions(rows: list[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, length, D] zero-padded states and their [B, length] mask (1 = real)."""
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for row, states in enumerate(rows):
        mask[row, :states.shape[0]] = 1
    return torch.stack([torch.nn.functional.pad(s, (0, 0, 0, length - s.shape[0])) for s in rows]), mask


def split_indices(reader: CacheReader, val_split: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, eval) cache indices; with no split the training set doubles as the eval set."""
    indices = list(range(len(reader)))
    if val_split <= 0:
        return indices, indices
    ranked = sorted(indices, key=lambda i: random.Random(f"{seed}:{reader.entries[i].id}").random())
    held = max(1, round(len(indices) * val_split))
    if held >= len(indices):
        held = len(indices) - 1
    evaluation = sorted(ranked[:held])
    return [i for i in indices if i not in set(evaluation)], evaluation
