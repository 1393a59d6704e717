"""merge_into_model: an official-layout folder whose decoder equals base + live adapter, loaded strictly."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from saved_adapters import saved_adapter

from acetune.adapters.merge import merge_into_model
from acetune.config import AdapterKind
from acetune.errors import CheckpointWriteError, ConfigError
from acetune.model import load_model, write_tiny_checkpoint


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("models") / "tiny-turbo")


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.LOKR])
def test_merged_model_equals_base_with_the_live_adapter(base_folder, config_for, forward, tmp_path, kind):
    base = load_model(base_folder)
    live = saved_adapter(base.model.decoder.eval(), config_for(kind, target_mlp=True), tmp_path / "adapter")
    expected = forward(live.decoder)

    out = merge_into_model(base_folder, [(tmp_path / "adapter", 1.0)], tmp_path / "merged")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "silence_latent.pt"]
    merged = load_model(out)  # strict: exactly the official keys and shapes
    torch.testing.assert_close(forward(merged.model.decoder.eval()), expected, rtol=1e-5, atol=1e-5)
    fresh = load_model(base_folder)
    for name, value in fresh.model.state_dict().items():  # only the adapted decoder weights moved
        same = torch.equal(merged.model.state_dict()[name], value)
        assert same != (name in {f"decoder.{t}.weight" for t in live.targets}), name
    assert torch.equal(merged.silence_latent, fresh.silence_latent)
    assert merged.variant.name == "turbo"


def test_strengths_and_several_adapters_and_dtype(base_folder, new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    saved_adapter(new_decoder(), config_for(AdapterKind.LOHA), tmp_path / "b", seed=1)
    out = merge_into_model(base_folder, [(tmp_path / "a", 0.5), (tmp_path / "b", -1.0)], tmp_path / "m", dtype="bf16")
    with safe_open(str(out / "model.safetensors"), "pt") as handle:
        assert handle.get_slice("decoder.layers.0.self_attn.q_proj.weight").get_dtype() == "BF16"
    merged = load_model(out, dtype="bf16")
    assert merged.model.decoder.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16


def test_the_base_folder_and_an_existing_output_are_protected(base_folder, new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    before = {p.name: p.read_bytes() for p in base_folder.iterdir()}
    for target in (base_folder, base_folder.parent):
        with pytest.raises(ConfigError, match="overwrite the base model"):
            merge_into_model(base_folder, [(tmp_path / "a", 1.0)], target, overwrite=True)
    with pytest.raises(ConfigError, match="no adapters"):
        merge_into_model(base_folder, [], tmp_path / "m")
    (tmp_path / "m").mkdir()
    with pytest.raises(CheckpointWriteError, match="already exists"):
        merge_into_model(base_folder, [(tmp_path / "a", 1.0)], tmp_path / "m")
    assert {p.name: p.read_bytes() for p in base_folder.iterdir()} == before
