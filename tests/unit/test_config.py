"""ModelConfig from config.json: types, unknown keys preserved, XL fields, variant detection."""

from __future__ import annotations

import json

import pytest

from acetune.errors import ConfigError
from acetune.model import ModelConfig, detect_variant, named_config

TURBO_JSON = {  # the published turbo config.json keys (values as published)
    "architectures": ["AceStepConditionGenerationModel"],
    "auto_map": {"AutoConfig": "configuration_acestep_v15.AceStepConfig",
                 "AutoModel": "modeling_acestep_v15_turbo.AceStepConditionGenerationModel"},
    "is_turbo": True, "model_version": "turbo", "dtype": "bfloat16", "model_type": "acestep",
    "hidden_size": 2048, "intermediate_size": 6144, "num_attention_heads": 16, "head_dim": 128,
    "fsq_dim": 2048, "fsq_input_levels": [8, 8, 8, 5, 5, 5], "fsq_input_num_quantizers": 1,
    "in_channels": 192, "audio_acoustic_hidden_dim": 64, "num_attention_pooler_hidden_layers": 2,
    "num_audio_decoder_hidden_layers": 24, "data_proportion": 0.5, "attention_bias": False,
    "attention_dropout": 0.0, "hidden_act": "silu", "initializer_range": 0.02,
    "layer_types": ["sliding_attention", "full_attention"] * 12, "max_position_embeddings": 32768,
    "transformers_version": "4.57.0", "some_future_key": {"nested": [1, 2]},
}


def test_reads_fields_and_defaults():
    config = ModelConfig.from_dict(TURBO_JSON)
    assert config.hidden_size == 2048 and config.num_hidden_layers == 24 and config.sliding_window == 128
    assert config.timestep_mu == -0.4 and config.timestep_sigma == 1.0
    assert config.is_turbo is True and not config.is_xl
    assert config.layer_types[0] == "sliding_attention" and config.layer_types[1] == "full_attention"


def test_unknown_keys_survive_a_round_trip(tmp_path):
    config = ModelConfig.from_dict(TURBO_JSON)
    path = tmp_path / "config.json"
    config.write_json(path)
    data = json.loads(path.read_text())
    assert data["some_future_key"] == {"nested": [1, 2]}
    assert data["auto_map"] == TURBO_JSON["auto_map"] and data["transformers_version"] == "4.57.0"
    assert ModelConfig.from_json_file(path) == config
    assert "encoder_hidden_size" not in data  # 2B configs gain no XL keys


def test_default_layer_types_and_disabled_window():
    config = ModelConfig.from_dict({"model_type": "acestep", "num_hidden_layers": 3, "use_sliding_window": False})
    assert config.layer_types == ["sliding_attention", "full_attention", "sliding_attention"]
    assert config.sliding_window is None


@pytest.mark.parametrize("key, value, message", [
    ("hidden_size", "2048", "hidden_size must be int"),
    ("timestep_mu", None, "timestep_mu must not be null"),
    ("is_turbo", "yes", "is_turbo must be bool or null"),
    ("fsq_input_levels", [8, "8"], "fsq_input_levels must be list"),
    ("in_channels", 128, "in_channels .128. must be 3 x audio_acoustic_hidden_dim"),
    ("num_key_value_heads", 5, "must be a multiple of num_key_value_heads"),
    ("layer_types", ["sliding_attention"], "layer_types has 1 entries"),
    ("hidden_act", "gelu", "hidden_act 'gelu' is not supported"),
])
def test_bad_values_name_the_field(key, value, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict({**TURBO_JSON, key: value}, source="ckpt/config.json")


def test_not_a_json_object_and_wrong_model_type():
    with pytest.raises(ConfigError, match="JSON object"):
        ModelConfig.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model_type is None"):
        ModelConfig.from_dict({"hidden_size": 64})


def test_xl_condition_side_uses_encoder_sizes():
    config = named_config("xl")
    assert config.is_xl and config.condition_hidden_size == 2048
    cond = config.condition_side()
    assert (cond.hidden_size, cond.intermediate_size, cond.num_attention_heads) == (2048, 6144, 16)
    assert not cond.is_xl and config.hidden_size == 2560


@pytest.mark.parametrize("overrides, expected", [
    ({"is_turbo": True}, "turbo"),
    ({"is_turbo": False}, "base"),
    ({"is_turbo": False, "model_version": "sft"}, "sft"),
    ({"is_turbo": None, "auto_map": {"AutoModel": "modeling_acestep_v15_base.AceStepConditionGenerationModel"}}, "base"),
    ({"is_turbo": None, "auto_map": {}}, "custom"),
])
def test_variant_detection(overrides, expected):
    data = {**TURBO_JSON, **overrides}
    if data["is_turbo"] is None:
        del data["is_turbo"]
    variant = detect_variant(ModelConfig.from_dict(data))
    assert variant.name == expected
    assert variant.uses_cfg == {"turbo": False, "base": True, "sft": True, "custom": None}[expected]


def test_xl_variant_and_explicit_override():
    assert detect_variant(named_config("xl")).name == "xl-turbo"
    custom = ModelConfig.from_dict({k: v for k, v in TURBO_JSON.items() if k not in ("is_turbo", "auto_map")})
    assert detect_variant(custom).name == "custom"
    assert detect_variant(custom, "sft").name == "sft"
    with pytest.raises(ConfigError, match="unknown variant 'turbo2'"):
        detect_variant(custom, "turbo2")
    with pytest.raises(ConfigError, match="does not fit a 2B config"):
        detect_variant(custom, "xl-base")
