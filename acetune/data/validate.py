"""Check a cache before training on it: checksums, tensors, lengths, padding cost of batching, fingerprint, captions.

Every sample's checksum is checked (a flipped bit on disk is a problem naming the sample). A cache made
before checksums existed (format version 1) cannot be checked that way: `unchecksummed` counts its
samples, and the CLI says how to add checksums (rebuild).

A sample whose `# Caption` text was made without a caption or genre (it trains on the activation tag and the
metas alone) is a warning, not a problem: the cache is still usable. It is read from the caption and tag
preprocess stores in each sample's index metadata; caches without them are not checked for it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from acetune.audio import LATENT_FRAMES_PER_SECOND
from acetune.data.cache import CacheReader
from acetune.data.findings import shown_caption
from acetune.data.fingerprint import bundle_fingerprint, read_fingerprint
from acetune.errors import CacheError
from acetune.model.bundle import resolve_bundle


@dataclass(frozen=True)
class LengthStats:
    minimum: int
    mean: float
    maximum: int

    @classmethod
    def of(cls, values: list[int]) -> "LengthStats":
        return cls(min(values), sum(values) / len(values), max(values)) if values else cls(0, 0.0, 0)


@dataclass
class ValidationReport:
    folder: Path
    samples: int
    problems: list[str] = field(default_factory=list)  # "<sample id>: what is wrong"
    warnings: list[str] = field(default_factory=list)  # "<sample id>: what to look at" (does not fail `ok`)
    latent: LengthStats | None = None
    condition: LengthStats | None = None
    dtypes: dict[str, str] = field(default_factory=dict)
    padding_efficiency: dict[str, float] = field(default_factory=dict)  # useful / computed tokens
    fingerprint_differences: list[str] | None = None  # None: not checked
    unchecksummed: int = 0  # samples without a checksum (caches made before checksums): bytes not checked

    @property
    def ok(self) -> bool:
        return not self.problems and not self.fingerprint_differences and self.samples > 0

    @property
    def latent_seconds(self) -> LengthStats | None:
        if self.latent is None:
            return None
        f = LATENT_FRAMES_PER_SECOND
        return LengthStats(self.latent.minimum // f, self.latent.mean / f, self.latent.maximum // f)


def padding_efficiency(lengths: list[int], batch_size: int, *, bucketed: bool, seed: int = 0) -> float:
    """Share of computed positions that are real data when batches are padded to their longest item.

    Unbucketed batches come from a seeded shuffle (what a random sampler does); bucketed batches
    group samples of similar length (sorted, consecutive).
    """
    if not lengths:
        return 0.0
    order = sorted(lengths) if bucketed else random.Random(seed).sample(lengths, len(lengths))
    computed = sum(max(order[i:i + batch_size]) * len(order[i:i + batch_size]) for i in range(0, len(order), batch_size))
    return sum(lengths) / computed


def validate_cache(folder: str | Path, *, batch_size: int = 4, checkpoint_dir: str | Path | None = None,
                   model: str | None = None) -> ValidationReport:
    folder = Path(folder)
    reader = CacheReader(folder)
    fingerprint = read_fingerprint(folder)
    report = ValidationReport(folder, len(reader), unchecksummed=len(reader) - reader.checksummed)
    latent_lengths, condition_lengths = [], []
    for index, entry in enumerate(reader.entries):
        try:
            tensors = reader.load(index)
        except CacheError as err:
            report.problems.append(f"{entry.id}: {err.what}")
            continue
        report.problems.extend(f"{entry.id}: {p}" for p in _check_sample(entry, tensors))
        if _uncaptioned(entry.metadata):
            report.warnings.append(f"{entry.id}: no caption or genre: trained on "
                                   f"{shown_caption(entry.metadata['caption'])} and the metas alone")
        for name, tensor in tensors.items():
            report.dtypes.setdefault(name, str(tensor.dtype).removeprefix("torch."))
        latent_lengths.append(entry.latent_length)
        condition_lengths.append(entry.condition_length)
    report.latent, report.condition = LengthStats.of(latent_lengths), LengthStats.of(condition_lengths)
    for name, lengths in (("latent", latent_lengths), ("condition", condition_lengths)):
        report.padding_efficiency[f"{name}, random batches"] = padding_efficiency(lengths, batch_size, bucketed=False)
        report.padding_efficiency[f"{name}, length buckets"] = padding_efficiency(lengths, batch_size, bucketed=True)
    if checkpoint_dir is not None:
        bundle = resolve_bundle(checkpoint_dir, model)
        now = bundle_fingerprint(bundle, fingerprint.options)
        report.fingerprint_differences = fingerprint.differences(now, include_options=False)
    return report


def _uncaptioned(metadata: dict) -> bool:
    """Whether the stored `# Caption` text is only the tag (or empty): apply_tag gives the bare tag exactly
    when the caption/genre text is empty; with tag position "replace" the caption is dropped on purpose."""
    caption = metadata.get("caption")
    if not isinstance(caption, str) or metadata.get("tag_position") == "replace":
        return False
    return caption.strip() in ("", str(metadata.get("tag") or "").strip())


def _check_sample(entry, tensors: dict[str, torch.Tensor]) -> list[str]:
    problems = []
    expected = {"target_latents": entry.latent_length, "encoder_hidden_states": entry.condition_length}
    for name, length in expected.items():
        tensor = tensors.get(name)
        if tensor is None:
            problems.append(f"{name} is missing")
            continue
        if tensor.dim() != 2 or tensor.shape[0] != length:
            problems.append(f"{name} has shape {list(tensor.shape)}, the index says {length} rows")
        if not tensor.is_floating_point():
            problems.append(f"{name} has dtype {tensor.dtype}, expected floating point")
        elif not bool(torch.isfinite(tensor).all()):
            problems.append(f"{name} holds NaN or Inf values")
    if entry.latent_length == 0:
        problems.append("no latent frames")
    return problems
