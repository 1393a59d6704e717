"""`ModelConfig` <-> the `config.json` of each diffusers `AceStepPipeline` model component.

Each component's config.json holds its constructor arguments (diffusers 0.42.1:
`AceStepTransformer1DModel`, and `AceStepConditionEncoder`, `AceStepAudioTokenizer`,
`AceStepAudioTokenDetokenizer` in pipelines/ace_step/modeling_ace_step.py). The transformer gets
the decoder's sizes; the other three the condition side's (`ModelConfig.condition_side()`), which
on XL is narrower than the decoder: the transformer then carries `encoder_hidden_size` for its
`condition_embedder`. The variant travels as the transformer's `is_turbo` / `model_version`.
Training-only facts (`timestep_mu`, `timestep_sigma`, `data_proportion`) have no place there; a
config read back uses the official defaults, which every released variant shares (spec model.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from acetune.errors import ConfigError
from acetune.model.config import MODEL_TYPE, ModelConfig

TRANSFORMER_CLASS = "AceStepTransformer1DModel"
CLASSES = {"transformer": TRANSFORMER_CLASS, "condition_encoder": "AceStepConditionEncoder",
           "audio_tokenizer": "AceStepAudioTokenizer", "audio_token_detokenizer": "AceStepAudioTokenDetokenizer"}

_ATTENTION = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim",
              "rope_theta", "attention_bias", "attention_dropout", "rms_norm_eps", "sliding_window", "layer_types")
_POOLER = ("audio_acoustic_hidden_dim", "pool_window_size", "num_attention_pooler_hidden_layers")
# component -> the ModelConfig fields it takes under the same names (condition-side values for all but the transformer)
FIELDS = {
    "transformer": _ATTENTION + ("num_hidden_layers", "in_channels", "audio_acoustic_hidden_dim", "patch_size",
                                 "is_turbo", "model_version"),
    "condition_encoder": _ATTENTION + ("text_hidden_dim", "timbre_hidden_dim", "num_lyric_encoder_hidden_layers",
                                       "num_timbre_encoder_hidden_layers"),
    "audio_tokenizer": _ATTENTION + _POOLER + ("fsq_dim", "fsq_input_levels", "fsq_input_num_quantizers"),
    "audio_token_detokenizer": _ATTENTION + _POOLER,
}
_XL_FIELDS = {"encoder_hidden_size": "hidden_size", "encoder_intermediate_size": "intermediate_size",
              "encoder_num_attention_heads": "num_attention_heads",
              "encoder_num_key_value_heads": "num_key_value_heads"}  # ModelConfig field -> condition_encoder key


def component_configs(config: ModelConfig, diffusers_version: str) -> dict[str, dict[str, Any]]:
    """component -> its config.json mapping (with diffusers' `_class_name` / `_diffusers_version`)."""
    condition = config.condition_side()
    out = {}
    for component, names in FIELDS.items():
        source = config if component == "transformer" else condition
        values = {name: getattr(source, name) for name in names}
        out[component] = {"_class_name": CLASSES[component], "_diffusers_version": diffusers_version, **values}
    if config.is_turbo is None:  # unknown variant: diffusers reads a missing key as False, acetune as unknown
        del out["transformer"]["is_turbo"]
    if config.is_xl:
        out["transformer"]["encoder_hidden_size"] = config.encoder_hidden_size
    return out


def config_from_components(configs: dict[str, dict[str, Any]], source: Path) -> ModelConfig:
    """The `ModelConfig` that `configs` (component -> config.json mapping) describe.

    The transformer and condition encoder are required; the audio tokenizer only adds the FSQ
    and pooler facts (its folder is optional in a pipeline), else they keep the official values.
    """
    transformer, condition = configs["transformer"], configs["condition_encoder"]
    data: dict[str, Any] = {"model_type": MODEL_TYPE}
    data.update(_known(transformer, FIELDS["transformer"]))
    for component in ("audio_token_detokenizer", "audio_tokenizer", "condition_encoder"):
        shared = set(FIELDS[component]) - set(_ATTENTION)
        data.update(_known(configs.get(component, {}), shared))
    if data.get("model_version") is None:
        data.pop("model_version", None)
    if data.get("sliding_window") is None:
        data["use_sliding_window"] = False
    if condition.get("hidden_size", data.get("hidden_size")) != data.get("hidden_size"):
        data.update({field: condition.get(key) for field, key in _XL_FIELDS.items()})
    elif transformer.get("encoder_hidden_size") not in (None, data.get("hidden_size")):
        raise ConfigError(f"the transformer's encoder_hidden_size ({transformer['encoder_hidden_size']}) differs from "
                          f"the condition encoder's hidden_size ({condition.get('hidden_size')})", path=source)
    data.setdefault("fsq_dim", condition.get("hidden_size", data.get("hidden_size")))  # equal to it by definition
    data["num_audio_decoder_hidden_layers"] = data.get("num_hidden_layers", ModelConfig.num_hidden_layers)  # unread
    try:
        return ModelConfig.from_dict(data, source=source)
    except ConfigError as err:
        raise ConfigError(f"the pipeline's component configs describe no valid ACE-Step model: {err.what}",
                          path=source) from err


def _known(values: dict[str, Any], names) -> dict[str, Any]:
    """The entries of a component config that carry a ModelConfig field (diffusers' own keys dropped)."""
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    return {k: v for k, v in values.items() if k in names and k in fields}
