"""export_comfyui: ComfyUI's key names, alpha baked in, and the same patched weights as the original adapter."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from saved_adapters import saved_adapter

from acetune.adapters.comfyui import export_comfyui
from acetune.adapters.formats import read_adapter
from acetune.adapters.patcher import AdapterPatcher
from acetune.config import AdapterKind, AttentionTargets
from acetune.errors import CheckpointWriteError, ConfigError

SELF_QV = {"attention": AttentionTargets.SELF, "projections": ("q_proj", "v_proj")}


def patched_state(decoder: torch.nn.Module, path) -> dict[str, torch.Tensor]:
    AdapterPatcher(decoder).load(path)
    return decoder.state_dict()


@pytest.mark.parametrize("prefix", ["base_model.model", "diffusion_model.decoder"])
@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA])
def test_key_map_is_comfyuis(new_decoder, config_for, tmp_path, kind, prefix):
    saved_adapter(new_decoder(), config_for(kind, **SELF_QV), tmp_path / "a", metadata={"variant": "turbo"})
    out = export_comfyui(tmp_path / "a", tmp_path / "a_comfyui.safetensors", prefix=prefix)
    tensors = load_file(str(out))
    parts = ["lora_down.weight", "lora_up.weight", "alpha"] + (["dora_scale"] if kind is AdapterKind.DORA else [])
    assert set(tensors) == {f"{prefix}.layers.{i}.self_attn.{p}.{part}"
                            for i in (0, 1) for p in ("q_proj", "v_proj") for part in parts}
    stem = f"{prefix}.layers.1.self_attn.v_proj"
    assert tensors[f"{stem}.lora_down.weight"].shape == (4, 64) and tensors[f"{stem}.lora_up.weight"].shape == (32, 4)
    alpha = tensors[f"{stem}.alpha"]
    assert alpha.dtype == torch.float32 and alpha.dim() == 0 and alpha.item() == 8.0  # lora_alpha, so 8/4 = 2
    if kind is AdapterKind.DORA:  # [out, 1]: ComfyUI's per-output-row branch, PEFT's DoRA axis
        assert tensors[f"{stem}.dora_scale"].shape == (32, 1)
    with safe_open(str(out), "pt") as handle:
        metadata = handle.metadata()
    assert (metadata["format"], metadata["source_format"], metadata["variant"]) == ("comfyui", "peft", "turbo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a_comfyui.safetensors"]  # no temp file left


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA, AdapterKind.LOKR, AdapterKind.LOHA])
def test_exported_file_patches_like_the_original_and_the_live_adapter(new_decoder, config_for, forward, tmp_path,
                                                                      kind):
    live = saved_adapter(new_decoder(), config_for(kind, target_mlp=True), tmp_path / "a")
    out = export_comfyui(tmp_path / "a", tmp_path / "a.safetensors")
    exported = read_adapter(out)
    assert (exported.format, exported.kind) == ("comfyui", kind.value)
    original = patched_state(new_decoder(), tmp_path / "a")
    through_comfyui = patched_state(new_decoder(), out)
    for key, value in original.items():
        torch.testing.assert_close(through_comfyui[key], value, rtol=0, atol=1e-6)
    patched = new_decoder()
    AdapterPatcher(patched).load(out)
    torch.testing.assert_close(forward(patched), forward(live.decoder), rtol=1e-5, atol=1e-5)
    if kind in (AdapterKind.LOKR, AdapterKind.LOHA):  # LyCORIS keys pass through untouched
        source = load_file(str(tmp_path / "a" / f"{kind.value}_weights.safetensors"))
        copied = load_file(str(out))
        assert set(copied) == set(source) and all(torch.equal(copied[k], v) for k, v in source.items())


def test_rslora_and_alpha_pattern_are_baked_into_alpha(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA, **SELF_QV), tmp_path / "a")
    config_path = tmp_path / "a" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "use_rslora": True, "alpha_pattern": {"v_proj": 6.0}}))
    tensors = load_file(str(export_comfyui(tmp_path / "a", tmp_path / "a.safetensors")))
    # ComfyUI applies alpha / rank: alpha/sqrt(r) * r
    assert tensors["base_model.model.layers.0.self_attn.q_proj.alpha"].item() == pytest.approx(8.0 * 2)
    assert tensors["base_model.model.layers.0.self_attn.v_proj.alpha"].item() == pytest.approx(6.0 * 2)


def test_full_fine_tunes_existing_files_and_unknown_prefixes_are_refused(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.FULL), tmp_path / "full")
    with pytest.raises(ConfigError, match="merge") as err:
        export_comfyui(tmp_path / "full", tmp_path / "full.safetensors")
    assert "decoder.safetensors" in str(err.value)
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    out = tmp_path / "a.safetensors"
    out.write_bytes(b"keep me")
    with pytest.raises(CheckpointWriteError, match="already exists"):
        export_comfyui(tmp_path / "a", out)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(ConfigError, match="prefix|maps"):
        export_comfyui(tmp_path / "a", tmp_path / "b.safetensors", prefix="model.diffusion_model")
    with pytest.raises(ConfigError, match=".safetensors"):
        export_comfyui(tmp_path / "a", tmp_path / "b.pt")
    os.chmod(out, 0o644)
    export_comfyui(tmp_path / "a", out, overwrite=True)
    assert read_adapter(out).kind == "lora"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.safetensors", "full"]
