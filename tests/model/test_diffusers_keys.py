"""The official <-> diffusers name and config maps, checked against the modules diffusers itself builds."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from acetune.errors import ConfigError
from acetune.model import named_config
from acetune.model.checkpoint import build_model, expected_shapes
from acetune.model.diffusers_config import CLASSES, component_configs, config_from_components
from acetune.model.diffusers_keys import (COMPONENTS, key_from_diffusers, key_to_diffusers, module_from_diffusers,
                                          module_to_diffusers)


def diffusers_modules(config) -> dict[str, torch.nn.Module]:
    """diffusers' four model components built on the meta device from the configs acetune writes."""
    import diffusers
    from diffusers.pipelines.ace_step import modeling_ace_step

    modules = {}
    for component, values in component_configs(config, diffusers.__version__).items():
        cls = getattr(diffusers, CLASSES[component], None) or getattr(modeling_ace_step, CLASSES[component])
        with torch.device("meta"):
            modules[component] = cls(**{k: v for k, v in values.items() if not k.startswith("_")})
    return modules


@pytest.mark.parametrize("name", ["tiny", "tiny-xl", "2b", "xl"])
def test_every_official_key_is_a_diffusers_key_of_the_same_shape_and_back(name):
    config = named_config(name)
    ours = expected_shapes(build_model(config, meta=True))
    theirs = {(component, key): tuple(value.shape) for component, module in diffusers_modules(config).items()
              for key, value in module.state_dict().items()}
    mapped = {key_to_diffusers(key): shape for key, shape in ours.items()}
    assert mapped == {k: v for k, v in theirs.items() if k != ("condition_encoder", "silence_latent")}
    assert theirs[("condition_encoder", "silence_latent")][2] == config.timbre_hidden_dim  # the one extra tensor
    assert all(key_from_diffusers(*mapped_key) == key for key, mapped_key in zip(ours, map(key_to_diffusers, ours)))
    if name == "2b":
        assert len(ours) == 677  # the official key count (spec model.md)


def test_renaming_is_by_whole_segment():
    assert module_to_diffusers("layers.3.self_attn.o_proj") == "layers.3.self_attn.to_out.0"
    assert module_to_diffusers("layers.3.cross_attn.k_norm") == "layers.3.cross_attn.norm_k"
    assert module_to_diffusers("layers.0.mlp.gate_proj") == "layers.0.mlp.gate_proj"  # MLP names are shared
    assert module_from_diffusers("layers.3.self_attn.to_out.0") == "layers.3.self_attn.o_proj"
    assert key_to_diffusers("decoder.proj_out.1.weight") == ("transformer", "proj_out_conv.weight")
    assert key_to_diffusers("detokenizer.proj_out.weight") == ("audio_token_detokenizer", "proj_out.weight")
    assert key_to_diffusers("tokenizer.audio_acoustic_proj.weight") == ("audio_tokenizer", "audio_acoustic_proj.weight")
    assert key_to_diffusers("null_condition_emb") == ("condition_encoder", "null_condition_emb")
    assert key_from_diffusers("condition_encoder", "null_condition_emb") == "null_condition_emb"
    assert set(COMPONENTS.values()) == set(CLASSES)  # one component table for keys, configs and model_index.json


def test_names_without_a_counterpart_are_refused():
    with pytest.raises(ValueError, match="silence_latent has no official"):
        key_from_diffusers("condition_encoder", "silence_latent")
    with pytest.raises(ValueError, match="no official"):
        key_from_diffusers("vae", "decoder.conv1.weight")
    with pytest.raises(ValueError, match="no ACE-Step pipeline component"):
        key_to_diffusers("silence_latent")


@pytest.mark.parametrize("name", ["tiny", "tiny-base", "tiny-xl", "xl"])
def test_component_configs_describe_the_same_model(name, tmp_path):
    config = named_config(name)
    back = config_from_components(component_configs(config, "0.42.1"), tmp_path)
    assert dataclasses.replace(back, extra={}) == dataclasses.replace(config, extra={})


def test_a_config_without_sliding_window_and_a_bad_one(tmp_path):
    config = dataclasses.replace(named_config("tiny"), use_sliding_window=False, sliding_window=None)
    configs = component_configs(config, "0.42.1")
    assert configs["transformer"]["sliding_window"] is None
    assert config_from_components(configs, tmp_path).use_sliding_window is False
    configs["transformer"]["num_key_value_heads"] = 3
    with pytest.raises(ConfigError, match="describe no valid ACE-Step model.*num_key_value_heads") as err:
        config_from_components(configs, tmp_path)
    assert err.value.path == tmp_path


def test_an_unknown_variant_stays_unknown(tmp_path):
    config = dataclasses.replace(named_config("tiny"), is_turbo=None)
    configs = component_configs(config, "0.42.1")
    assert "is_turbo" not in configs["transformer"] and configs["transformer"]["model_version"] == "turbo"
    assert config_from_components(configs, tmp_path).is_turbo is None
