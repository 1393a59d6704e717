"""Which text fills the `# Caption` slot: caption or genre, then the activation tag (training.md §1.5)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from acetune.data.labels import SampleLabels
from acetune.errors import LabelError

TagPosition = Literal["prepend", "append", "replace"]
TAG_POSITIONS: tuple[str, ...] = ("prepend", "append", "replace")


@dataclass(frozen=True)
class TagConfig:
    """The dataset-wide activation tag; a sample's own `custom_tag` replaces `tag` (not the position)."""

    tag: str = ""
    position: TagPosition = "prepend"

    def __post_init__(self) -> None:
        if self.position not in TAG_POSITIONS:
            raise LabelError(f"tag position {self.position!r} is not one of {', '.join(TAG_POSITIONS)}",
                             fix="use prepend, append or replace")


def apply_tag(text: str, tag: str, position: TagPosition) -> str:
    """prepend "{tag}, {text}", append "{text}, {tag}", replace "{tag}"; an empty side leaves the other."""
    if position not in TAG_POSITIONS:
        raise ValueError(f"tag position {position!r} is not one of {TAG_POSITIONS}")
    if not tag:
        return text
    if not text or position == "replace":
        return tag
    return f"{tag}, {text}" if position == "prepend" else f"{text}, {tag}"


def genre_indices(n: int, ratio: int, seed: int = 42) -> set[int]:
    """The sample indices that use their genre: shuffle 0..n-1 with Random(seed), keep int(n*ratio/100)."""
    if not 0 <= ratio <= 100:
        raise ValueError(f"genre ratio must be 0..100, got {ratio}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return set(order[: int(n * ratio / 100)])


def select_caption(labels: SampleLabels, index: int, genre_set: set[int], dataset_tag: TagConfig) -> str:
    """Caption text for sample `index`: `prompt_override` wins, else genre when `index` is in `genre_set`.
    A genre pick with an empty genre uses the caption. Then the sample's `custom_tag` (or the dataset tag)."""
    if labels.prompt_override is not None:
        use_genre = labels.prompt_override == "genre"
    else:
        use_genre = index in genre_set
    text = labels.genre if use_genre and labels.genre else labels.caption
    tag = labels.custom_tag or dataset_tag.tag
    return apply_tag(text, tag, dataset_tag.position)
