"""What every adapter the trainer writes says about itself (safetensors header metadata).

A user who finds the file months later, or a loader in another app, learns from it the
activation tag to put in captions, the variant it was trained on, the sampler settings that
variant wants, which cache (and so which checkpoint) made it, and the acetune version; and the
precision and RoPE convention it was trained with (`rope_dtype`: `model` = frequencies rounded
to the compute dtype as in the official app, `fp32`), so generation can follow that convention.
"""

from __future__ import annotations

from collections import Counter

import torch

from acetune import __version__
from acetune.data.cache import CacheReader
from acetune.data.fingerprint import Fingerprint
from acetune.model.sampling import SamplerSettings
from acetune.model.variant import kind_of
from acetune.model.weights import short_dtype_name


def trigger_word(reader: CacheReader) -> tuple[str, str]:
    """The activation tag most samples were captioned with, and its position ("", "prepend" if none)."""
    tags = Counter((entry.metadata.get("tag") or "", entry.metadata.get("tag_position") or "prepend")
                   for entry in reader.entries)
    tagged = [(item, count) for item, count in tags.most_common() if item[0]]
    return tagged[0][0] if tagged else ("", "prepend")


def recommended_sampler(variant: str) -> SamplerSettings | None:
    kind = kind_of(variant)
    return None if kind is None else SamplerSettings.for_variant(kind)


def adapter_metadata(*, variant: str, fingerprint: Fingerprint, trigger: tuple[str, str], adapter_kind: str,
                     step: int, base_model: str, compute_dtype: torch.dtype, rope_dtype: str,
                     tasks: tuple[str, ...] = ("text2music",)) -> dict[str, str]:
    """String -> string metadata for `save_adapter` (safetensors headers hold only strings).

    `tasks`: what the adapter was trained to do (comma-separated, e.g. "text2music,repaint,cover").
    """
    metadata = {"acetune_version": __version__, "variant": variant, "base_model": base_model, "step": str(step),
                "cache_fingerprint": fingerprint.model[:16], "adapter": adapter_kind,
                "trigger_word": trigger[0], "tag_position": trigger[1], "precision": short_dtype_name(compute_dtype),
                "rope_dtype": rope_dtype, "tasks": ",".join(tasks)}
    settings = recommended_sampler(variant)
    if settings is not None:
        metadata.update(recommended_shift=f"{settings.shift:g}", recommended_steps=str(settings.step_count),
                        recommended_guidance=f"{settings.guidance:g}")
    return metadata
