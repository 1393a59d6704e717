"""save_adapter / load_adapter: exact reloads, upstream-loadable formats, strict and atomic file handling."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from acetune.adapters import attach, load_adapter, save_adapter, target_module_names
from acetune.adapters.formats import inspect_adapter
from acetune.adapters.lycoris_backend import lycoris_name
from acetune.config import AdapterKind, AttentionTargets
from acetune.errors import CheckpointWriteError, ConfigError, ModelLoadError

FILES = {
    AdapterKind.LORA: ["adapter_config.json", "adapter_model.safetensors"],
    AdapterKind.DORA: ["adapter_config.json", "adapter_model.safetensors"],
    AdapterKind.LOKR: ["lokr_weights.safetensors"],
    AdapterKind.LOHA: ["loha_weights.safetensors"],
    AdapterKind.FULL: ["decoder.safetensors"],
}
PEFT_KEY = re.compile(r"^base_model\.model\.layers\.\d+\.(self_attn|cross_attn)\.[qkvo]_proj\.lora_[AB]\.weight$")


@pytest.fixture()
def trained(new_decoder, config_for, train_step, forward):
    """kind, **config changes -> (attached adapter after one step, its output)."""

    def make(kind: AdapterKind, **changes):
        attached = attach(new_decoder(), config_for(kind, **changes), seed=0)
        train_step(attached)
        return attached, forward(attached.decoder)

    return make


@pytest.mark.parametrize(("kind", "changes"), [
    *[(kind, {}) for kind in AdapterKind],
    (AdapterKind.LOKR, {"rank": 2, "decompose_both": True}),  # low-rank factors (lokr_w1_a ...), scale alpha/r = 4
])
def test_save_then_load_reproduces_the_output_bit_exactly(trained, new_decoder, forward, tmp_path, kind, changes):
    attached, output = trained(kind, target_mlp=True, **changes)
    folder = save_adapter(attached, tmp_path / "adapter", metadata={"song_count": "12"})
    assert sorted(p.name for p in folder.iterdir()) == FILES[kind]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no staging folder left behind

    fresh = new_decoder()
    assert not torch.equal(forward(fresh), output)
    loaded = load_adapter(fresh, folder)
    assert torch.equal(forward(fresh), output)
    assert loaded.kind is kind and loaded.config == attached.config and loaded.targets == attached.targets
    assert loaded.trainable_names == attached.trainable_names
    with safe_open(str(folder / FILES[kind][-1]), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["song_count"] == "12"
    assert json.loads(metadata["acetune_adapter_config"])["kind"] == kind.value


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA])
def test_peft_folder_loads_like_the_ace_step_app_loads_it(trained, new_decoder, forward, tmp_path, kind):
    from peft import PeftModel

    attached, _ = trained(kind, attention=AttentionTargets.BOTH)
    folder = save_adapter(attached, tmp_path / "lora", metadata={})
    # PEFT loads frozen. On CPU, matmul picks another (1-ulp different) kernel for weights that
    # require grad, so the reference is taken with the same flags.
    attached.decoder.requires_grad_(False)
    output = forward(attached.decoder)
    fresh = new_decoder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(fresh, str(folder))
    assert not [w for w in caught if "peft" in w.filename], [str(w.message) for w in caught]
    assert peft_model.get_base_model() is fresh
    assert torch.equal(forward(fresh), output)

    keys = set(load_file(str(folder / "adapter_model.safetensors")))
    targets = target_module_names(new_decoder(), attached.config)
    expected = {f"base_model.model.{t}.lora_{ab}.weight" for t in targets for ab in "AB"}
    if kind is AdapterKind.DORA:
        expected |= {f"base_model.model.{t}.lora_magnitude_vector" for t in targets}
    assert keys == expected
    assert all(PEFT_KEY.match(k) for k in keys if "magnitude" not in k)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "FEATURE_EXTRACTION"
    assert sorted(config["target_modules"]) == sorted(targets)
    assert (config["r"], config["lora_alpha"], config["use_dora"]) == (4, 8.0, kind is AdapterKind.DORA)


@pytest.mark.parametrize(("kind", "suffixes"), [
    (AdapterKind.LOKR, {"lokr_w1", "lokr_w2", "alpha"}),
    (AdapterKind.LOHA, {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha"}),
])
def test_lycoris_file_holds_only_the_chosen_targets(trained, new_decoder, forward, tmp_path, kind, suffixes):
    from lycoris import create_lycoris_from_weights

    attached, output = trained(kind, attention=AttentionTargets.SELF)
    folder = save_adapter(attached, tmp_path / kind.value, metadata={})
    path = folder / f"{kind.value}_weights.safetensors"
    keys = set(load_file(str(path)))
    targets = [f"layers.{i}.self_attn.{p}_proj" for i in (0, 1) for p in "qkvo"]
    assert keys == {f"{lycoris_name(t)}.{s}" for t in targets for s in suffixes}
    assert f"lycoris_layers_0_self_attn_q_proj.{sorted(suffixes)[-1]}" in keys
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    assert (metadata["algo"], metadata["format"]) == (kind.value, "lycoris")
    upstream = json.loads(metadata[f"{kind.value}_config"])
    assert (upstream["linear_dim"], upstream["linear_alpha"], upstream["attention_type"]) == (4, 8.0, "self")

    # LyCORIS's own loader (the ALT merge path) infers the modules from the keys and agrees with us
    fresh = new_decoder()
    network, _ = create_lycoris_from_weights(1.0, str(path), fresh)
    network.apply_to()
    network.load_weights(str(path))
    assert len(network.loras) == len(targets)
    torch.testing.assert_close(forward(fresh), output, rtol=0, atol=1e-6)


def test_a_lycoris_alpha_that_disagrees_with_the_config_is_refused(trained, new_decoder, tmp_path):
    # LyCORIS computes its scale from alpha when the module is built; loading another alpha would be ignored
    attached, _ = trained(AdapterKind.LOKR, rank=2)
    folder = save_adapter(attached, tmp_path / "a", metadata={})
    path = folder / "lokr_weights.safetensors"
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    assert tensors["lycoris_layers_0_self_attn_q_proj.lokr_w2_a"].shape == (8, 2)
    tensors["lycoris_layers_0_self_attn_q_proj.alpha"] = torch.tensor(1.0)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ModelLoadError, match="alpha"):
        load_adapter(new_decoder(), folder)


def test_full_file_uses_official_decoder_keys(trained, new_decoder, tmp_path):
    attached, _ = trained(AdapterKind.FULL)
    folder = save_adapter(attached, tmp_path / "full", metadata={})
    keys = set(load_file(str(folder / "decoder.safetensors")))
    assert keys == {f"decoder.{k}" for k in new_decoder().state_dict()}
    assert "decoder.layers.0.self_attn.q_proj.weight" in keys and "decoder.proj_in.1.weight" in keys


def test_existing_folder_is_refused_unless_overwrite(trained, tmp_path):
    attached, _ = trained(AdapterKind.LORA)
    target = tmp_path / "out"
    target.mkdir()
    save_adapter(attached, target, metadata={})  # an empty folder is fine
    with pytest.raises(CheckpointWriteError, match="already exists"):
        save_adapter(attached, target, metadata={})
    (target / "stale.txt").write_text("old")
    save_adapter(attached, target, metadata={}, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == FILES[AdapterKind.LORA]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_reserved_metadata_keys_are_refused(trained, tmp_path):
    attached, _ = trained(AdapterKind.LOKR)
    with pytest.raises(ConfigError, match="reserved"):
        save_adapter(attached, tmp_path / "x", metadata={"algo": "lora"})
    with pytest.raises(ConfigError, match="strings"):
        save_adapter(attached, tmp_path / "x", metadata={"steps": 3})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.LOKR, AdapterKind.FULL])
def test_corrupt_weights_name_the_file_and_leave_the_decoder_alone(
        trained, new_decoder, forward, tmp_path, kind):
    attached, _ = trained(kind)
    folder = save_adapter(attached, tmp_path / "a", metadata={})
    weights = folder / FILES[kind][-1]
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a truncated copy
    fresh = new_decoder()
    base = forward(fresh)
    with pytest.raises(ModelLoadError, match=re.escape(weights.name)):
        load_adapter(fresh, folder)
    assert torch.equal(forward(fresh), base)


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.LOHA, AdapterKind.FULL])
def test_a_missing_tensor_is_refused_and_the_decoder_restored(trained, new_decoder, forward, tmp_path, kind):
    attached, _ = trained(kind)
    folder = save_adapter(attached, tmp_path / "a", metadata={"k": "v"})
    weights = folder / FILES[kind][-1]
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(weights))
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(weights), metadata=metadata)
    fresh = new_decoder()
    base = forward(fresh)
    with pytest.raises(ModelLoadError, match="1 missing") as err:
        load_adapter(fresh, folder)
    assert weights.name in str(err.value)
    assert torch.equal(forward(fresh), base)
    assert all(p.requires_grad for p in fresh.parameters())


def test_unknown_or_damaged_folders_are_clear_errors(trained, new_decoder, tmp_path):
    with pytest.raises(ModelLoadError, match="no adapter here"):
        load_adapter(new_decoder(), tmp_path)
    attached, _ = trained(AdapterKind.LORA)
    folder = save_adapter(attached, tmp_path / "a", metadata={})
    (folder / "adapter_config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        load_adapter(new_decoder(), folder)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "OFT"}))
    with pytest.raises(ModelLoadError, match="OFT"):
        load_adapter(new_decoder(), folder)


def test_a_file_path_loads_its_folder_and_a_foreign_peft_folder_is_described(trained, new_decoder, forward, tmp_path):
    attached, output = trained(AdapterKind.LORA, attention=AttentionTargets.CROSS)
    folder = save_adapter(attached, tmp_path / "a", metadata={})
    weights = folder / "adapter_model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"format": "pt"})  # as another trainer writes it
    fresh = new_decoder()
    loaded = load_adapter(fresh, folder / "adapter_config.json")
    assert torch.equal(forward(fresh), output)
    assert loaded.config.attention is AttentionTargets.CROSS
    assert loaded.config.projections == attached.config.projections
    assert (loaded.config.rank, loaded.config.alpha, loaded.config.kind) == (4, 8.0, AdapterKind.LORA)


@pytest.mark.parametrize("kind", list(AdapterKind))
@pytest.mark.parametrize("layout", ["folder", "nested", "weights file", "marker file"])
def test_every_accepted_layout_is_found_by_the_loader_and_the_inference_reader(trained, new_decoder, forward,
                                                                                tmp_path, kind, layout):
    attached, output = trained(kind)
    nested = layout == "nested"
    folder = save_adapter(attached, tmp_path / "run" / "adapter" if nested else tmp_path / "a", metadata={})
    path = {"folder": folder, "nested": tmp_path / "run", "weights file": folder / FILES[kind][-1],
            "marker file": folder / FILES[kind][0]}[layout]
    assert inspect_adapter(path).path == folder / FILES[kind][-1]
    fresh = new_decoder()
    assert load_adapter(fresh, path).kind is kind
    assert torch.equal(forward(fresh), output)


def test_the_loader_refuses_a_single_file_adapter_it_cannot_train_on(trained, new_decoder, tmp_path):
    attached, _ = trained(AdapterKind.LOKR)
    folder = save_adapter(attached, tmp_path / "a", metadata={})
    single = (folder / FILES[AdapterKind.LOKR][0]).rename(tmp_path / "my_lokr.safetensors")
    assert inspect_adapter(single).kind == "lokr"
    with pytest.raises(ModelLoadError, match="not an adapter acetune can train on") as err:
        load_adapter(new_decoder(), single)
    assert "my_lokr.safetensors" in str(err.value)
