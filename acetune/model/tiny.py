"""Named model configs and tiny random models for tests, benchmarks and the demo.

`tiny` is the exact config of the golden reference files (width 64, 2 layers). The full-size
`2b` and `xl` configs are the official architectures, for meta-device checks and benchmarks.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from acetune.errors import ConfigError
from acetune.model.acestep import AceStepModel
from acetune.model.checkpoint import save_model
from acetune.model.config import ModelConfig
from acetune.model.initialization import init_weights
from acetune.model.masks import AttentionOptions

_OFFICIAL_EXTRA = {
    "architectures": ["AceStepConditionGenerationModel"],
    "auto_map": {
        "AutoConfig": "configuration_acestep_v15.AceStepConfig",
        "AutoModel": "modeling_acestep_v15_turbo.AceStepConditionGenerationModel",
    },
    "dtype": "bfloat16",
}

_TINY = {
    "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "num_hidden_layers": 2, "num_audio_decoder_hidden_layers": 2,
    "num_lyric_encoder_hidden_layers": 2, "num_timbre_encoder_hidden_layers": 1,
    "num_attention_pooler_hidden_layers": 2, "sliding_window": 4, "text_hidden_dim": 32, "fsq_dim": 64,
    "layer_types": ["sliding_attention", "full_attention"],
}

_SMALL = {  # a CPU-benchmarkable decoder with the official proportions (3x MLP, GQA 2:1, hd 64)
    "hidden_size": 512, "intermediate_size": 1536, "num_attention_heads": 8, "num_key_value_heads": 4,
    "head_dim": 64, "num_hidden_layers": 8, "num_lyric_encoder_hidden_layers": 2,
    "num_timbre_encoder_hidden_layers": 2, "sliding_window": 128, "text_hidden_dim": 64, "fsq_dim": 512,
}

_MID = {  # between small and 2B: for CPU/GPU benchmarks of the trainer
    "hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 8, "num_key_value_heads": 4,
    "head_dim": 128, "num_hidden_layers": 12, "num_lyric_encoder_hidden_layers": 2,
    "num_timbre_encoder_hidden_layers": 2, "sliding_window": 128, "text_hidden_dim": 64, "fsq_dim": 1024,
}

_XL = {
    "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 128, "encoder_hidden_size": 2048, "encoder_intermediate_size": 6144,
    "encoder_num_attention_heads": 16, "encoder_num_key_value_heads": 8, "fsq_dim": 2048,
    "num_audio_decoder_hidden_layers": 32,
}

_TINY_XL = {**_TINY, "hidden_size": 96, "intermediate_size": 192, "num_attention_heads": 6, "num_key_value_heads": 2,
            "encoder_hidden_size": 64, "encoder_intermediate_size": 128, "encoder_num_attention_heads": 4,
            "encoder_num_key_value_heads": 2}

NAMED = {
    "tiny": {**_TINY, "is_turbo": True},
    "tiny-base": {**_TINY, "is_turbo": False, "model_version": "base"},
    "tiny-xl": {**_TINY_XL, "is_turbo": True},
    "small": {**_SMALL, "is_turbo": True},
    "mid": {**_MID, "is_turbo": True},
    "2b": {"is_turbo": True},
    "xl": {**_XL, "is_turbo": True},
}


def named_config(name: str) -> ModelConfig:
    """One of NAMED as a ModelConfig (with the official bookkeeping keys)."""
    if name not in NAMED:
        close = difflib.get_close_matches(name, list(NAMED), n=1)
        raise ConfigError(f"unknown model config {name!r}" + (f"; did you mean {close[0]}?" if close else ""),
                          fix=f"use one of {', '.join(NAMED)}")
    return ModelConfig.from_dict({"model_type": "acestep", **_OFFICIAL_EXTRA, **NAMED[name]})


def build_tiny_model(name: str = "tiny", seed: int = 0, options: AttentionOptions | None = None) -> AceStepModel:
    """A randomly initialised fp32 model of a named (small) config, deterministic in `seed`."""
    return init_weights(AceStepModel(named_config(name), options), seed)


def synthetic_silence_latent(config: ModelConfig, frames: int = 3000, seed: int = 0) -> torch.Tensor:
    """A stand-in silence latent [1, frames, C] with the published statistics (mean -0.21, std 0.96)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, frames, config.audio_acoustic_hidden_dim, generator=gen) * 0.96 - 0.21


def write_tiny_checkpoint(folder: str | Path, name: str = "tiny", seed: int = 0, overwrite: bool = False) -> Path:
    """An official-layout checkpoint folder holding a tiny random model (for tests and the demo)."""
    model = build_tiny_model(name, seed)
    return save_model(model, folder, silence_latent=synthetic_silence_latent(model.config, seed=seed),
                      dtype="fp32", overwrite=overwrite)
