"""What a checkpoint folder holds, read from headers only (no tensor data), for `acetune model info`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from acetune.model.checkpoint import (build_model, checkpoint_weights, expected_shapes, has_silence_latent,
                                      load_silence_latent, read_model_config)
from acetune.model.config import ModelConfig
from acetune.model.hub import CheckpointSource, resolve_checkpoint
from acetune.model.keycheck import KeyReport, compare_keys
from acetune.model.variant import Variant, detect_variant

PARTS = (
    "decoder", "encoder.text_projector", "encoder.lyric_encoder", "encoder.timbre_encoder",
    "tokenizer", "detokenizer", "null_condition_emb",
)


@dataclass(frozen=True)
class CheckpointSummary:
    folder: Path
    config: ModelConfig
    variant: Variant
    parameters: dict[str, int]  # per part of PARTS, from the model the config describes
    file_dtypes: dict[str, int]  # dtype -> tensor count in the weight files
    weight_files: list[tuple[str, int]]  # (name, bytes)
    keys: KeyReport
    silence_frames: int | None

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())


def summarize_checkpoint(source: str | Path | CheckpointSource, variant: str | None = None) -> CheckpointSummary:
    """What `source` holds; a Hub repo is downloaded first (`hub.locate_checkpoint` says which it is)."""
    folder = resolve_checkpoint(source)
    config = read_model_config(folder)
    weights = checkpoint_weights(folder)
    model = build_model(config, meta=True)
    parameters = {part: 0 for part in PARTS}
    for name, param in model.named_parameters():
        part = next(p for p in PARTS if name == p or name.startswith(p + "."))
        parameters[part] += param.numel()
    silence = load_silence_latent(folder, config).shape[1] if has_silence_latent(folder) else None
    return CheckpointSummary(
        folder=folder,
        config=config,
        variant=detect_variant(config, variant),
        parameters=parameters,
        file_dtypes=dict(Counter(weights.dtypes.values())),
        weight_files=[(f.name, f.stat().st_size) for f in weights.files],
        keys=compare_keys(expected_shapes(model), weights.shapes),
        silence_frames=silence,
    )
