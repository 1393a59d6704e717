"""Kohya-style files (`lora_unet_*`) read like the adapters they spell, and what acetune cannot patch is named."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from saved_adapters import saved_adapter

from acetune.adapters.comfyui import export_comfyui
from acetune.adapters.compatibility import loads_in
from acetune.adapters.formats import inspect_adapter, read_adapter
from acetune.adapters.patcher import AdapterPatcher
from acetune.config import AdapterKind
from acetune.errors import ModelLoadError

PEFT_PREFIX = "base_model.model."


def kohya_from_peft(tensors: dict[str, torch.Tensor], prefix: str, alpha: float | None) -> dict[str, torch.Tensor]:
    """The same LoRA in kohya's spelling: dots of the module path as `_`, lora_down/lora_up, a scalar `.alpha`."""
    out = {}
    for key, value in tensors.items():
        module, _, part = key.removeprefix(PEFT_PREFIX).rpartition(".lora_")
        stem = prefix + module.replace(".", "_")
        out[f"{stem}.{'lora_down' if part.startswith('A') else 'lora_up'}.weight"] = value.half()
        if alpha is not None:
            out[f"{stem}.alpha"] = torch.tensor(alpha, dtype=torch.float16)  # sd-scripts stores it in the save dtype
    return out


def patched(new_decoder, path, **load) -> dict[str, torch.Tensor]:
    decoder = new_decoder()
    AdapterPatcher(decoder).load(path, **load)
    return decoder.state_dict()


@pytest.mark.parametrize("prefix", ["lora_unet_decoder_", "lora_unet_"])  # ComfyUI's / the older musubi spelling
def test_kohya_lora_patches_like_the_peft_folder_it_spells(new_decoder, config_for, tmp_path, prefix):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA, target_mlp=True), tmp_path / "a")  # rank 4, alpha 8
    tensors = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    path = tmp_path / "k.safetensors"
    save_file(kohya_from_peft(tensors, prefix, 8.0), str(path), metadata={"ss_network_dim": "4"})
    adapter = read_adapter(path)
    assert (adapter.format, adapter.kind, adapter.warnings) == ("kohya", "lora", ())
    assert set(adapter.deltas) == {k.removeprefix(PEFT_PREFIX).rsplit(".lora_", 1)[0] for k in tensors}
    assert "layers.1.mlp.gate_proj" in adapter.deltas and "layers.0.cross_attn.o_proj" in adapter.deltas
    assert {d.scale for d in adapter.deltas.values()} == {2.0}
    reference = patched(new_decoder, tmp_path / "a")
    for key, value in patched(new_decoder, path).items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=2e-3)  # factors stored in fp16
    comfyui = {row.tool: row.loads for row in loads_in(inspect_adapter(path))}["ComfyUI"]
    assert comfyui == ("yes" if prefix == "lora_unet_decoder_" else "no")
    exported = load_file(str(export_comfyui(path, tmp_path / "c.safetensors")))  # any spelling -> ComfyUI's
    assert "base_model.model.layers.0.self_attn.q_proj.alpha" in exported


def test_kohya_lycoris_keys_read_and_export_under_lycoris_names(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LOKR), tmp_path / "a")
    tensors = load_file(str(tmp_path / "a" / "lokr_weights.safetensors"))
    renamed = {k.replace("lycoris_", "lora_unet_decoder_", 1): v for k, v in tensors.items()}
    save_file(renamed, str(tmp_path / "k.safetensors"))
    adapter = read_adapter(tmp_path / "k.safetensors")
    assert (adapter.format, adapter.kind) == ("kohya", "lokr")
    reference = patched(new_decoder, tmp_path / "a")
    for key, value in patched(new_decoder, tmp_path / "k.safetensors").items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6)
    exported = load_file(str(export_comfyui(tmp_path / "k.safetensors", tmp_path / "c.safetensors")))
    assert set(exported) == set(tensors) and all(torch.equal(exported[k], v) for k, v in tensors.items())


def test_text_encoder_and_condition_encoder_keys_are_named_never_dropped_silently(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    kohya = kohya_from_peft(load_file(str(tmp_path / "a" / "adapter_model.safetensors")), "lora_unet_decoder_", 8.0)
    others = {"lora_te_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 32),
              "lora_te_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(32, 4),
              "lora_te_encoder_layers_0_self_attn_q_proj.alpha": torch.tensor(4.0),
              "lora_unet_encoder_lyric_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 64)}
    save_file({**kohya, **others}, str(tmp_path / "mixed.safetensors"))
    adapter = read_adapter(tmp_path / "mixed.safetensors")
    assert len(adapter.deltas) == 16  # the decoder part is applied whole
    warnings = " | ".join(adapter.warnings)
    assert "3 keys for the text encoder (lora_te*) are not applied" in warnings
    assert "1 keys for the condition encoder are not applied" in warnings
    loaded = AdapterPatcher(new_decoder()).load(tmp_path / "mixed.safetensors")
    assert any("text encoder" in w for w in loaded.warnings)  # generate prints them; merge logs them

    save_file(others, str(tmp_path / "te_only.safetensors"))
    with pytest.raises(ModelLoadError, match="adapts nothing acetune patches.*text encoder") as err:
        read_adapter(tmp_path / "te_only.safetensors")
    assert str(tmp_path / "te_only.safetensors") in str(err.value) and "decoder" in str(err.value)


def test_unknown_kohya_modules_are_refused_with_the_keys(tmp_path):
    path = tmp_path / "k.safetensors"
    save_file({"lora_unet_decoder_layers_0_self_attn_qproj.lora_down.weight": torch.zeros(2, 2),
               "lora_unet_decoder_layers_0_self_attn_qproj.lora_up.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ModelLoadError, match="no known adapter format.*lora_unet_decoder_layers_0_self_attn_qproj"):
        read_adapter(path)


def test_inspect_decides_without_tensor_data(new_decoder, config_for, tmp_path, monkeypatch):
    import acetune.adapters.formats as formats

    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a", metadata={"step": "9"})

    def no_tensor_data(path):
        raise AssertionError(f"tensor data of {path} read")

    monkeypatch.setattr(formats, "read_safetensors", no_tensor_data)
    header = inspect_adapter(tmp_path / "a")
    assert (header.format, header.kind, header.alpha_source, header.metadata["step"]) == (
        "peft", "lora", "adapter_config.json", "9")
    with pytest.raises(AssertionError, match="tensor data"):
        read_adapter(tmp_path / "a")
