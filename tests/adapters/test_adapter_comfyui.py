"""export_comfyui: ComfyUI's key names, alpha baked in, and the same patched weights as the original adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from saved_adapters import saved_adapter

from acetune.adapters.comfyui import diff_bytes, export_comfyui, factor_bytes, weight_decomposed
from acetune.adapters.export_names import default_export_path
from acetune.adapters.formats import read_adapter
from acetune.adapters.patcher import AdapterPatcher
from acetune.config import AdapterKind, AttentionTargets
from acetune.errors import CheckpointWriteError, ConfigError, ModelLoadError
from acetune.model import build_tiny_model
from acetune.model.checkpoint import load_model, save_model
from acetune.model.tiny import synthetic_silence_latent

SELF_QV = {"attention": AttentionTargets.SELF, "projections": ("q_proj", "v_proj")}


def patched_state(decoder: torch.nn.Module, path) -> dict[str, torch.Tensor]:
    AdapterPatcher(decoder).load(path)
    return decoder.state_dict()


@pytest.mark.parametrize("prefix", ["base_model.model", "diffusion_model.decoder"])
@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA])
def test_key_map_is_comfyuis(new_decoder, config_for, tmp_path, kind, prefix):
    saved_adapter(new_decoder(), config_for(kind, **SELF_QV), tmp_path / "a", metadata={"variant": "turbo"})
    out = export_comfyui(tmp_path / "a", tmp_path / "a_comfyui.safetensors", prefix=prefix, dora_as_lora=True)
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
                                                                      tiny_checkpoint, kind):
    live = saved_adapter(new_decoder(), config_for(kind, target_mlp=True), tmp_path / "a")
    out = export_comfyui(tmp_path / "a", tmp_path / "a.safetensors", base=tiny_checkpoint)  # same weights (seed 0)
    exported = read_adapter(out)
    assert (exported.format, exported.kind) == ("comfyui", "diff" if kind is AdapterKind.DORA else kind.value)
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


def comfyui_applies(base: dict[str, torch.Tensor], exported: dict[str, torch.Tensor], strength: float,
                    prefix: str = "base_model.model") -> dict[str, torch.Tensor]:
    """What ComfyUI computes from `.diff` / `.diff_b` keys: W + strength * diff in float32, rounded to W's dtype."""
    out = dict(base)
    for key, diff in exported.items():
        stem, _, kind = key.removeprefix(prefix + ".").rpartition(".")
        target = f"{stem}.{'weight' if kind == 'diff' else 'bias'}"
        out[target] = (base[target].float() + strength * diff.float()).to(base[target].dtype)
    return out


def bf16_base(tmp_path) -> tuple[Path, dict[str, torch.Tensor]]:
    """The seed-0 tiny model saved in bf16 (as the official checkpoints are), and its decoder weights."""
    model = build_tiny_model("tiny", 0)
    folder = save_model(model, tmp_path / "base", silence_latent=synthetic_silence_latent(model.config), dtype="bf16")
    return folder, load_model(folder, dtype="bf16").model.decoder.state_dict()


def test_dora_exports_exactly_as_full_weight_differences_on_its_base(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA, target_mlp=True), tmp_path / "a",
                  metadata={"step": "12"})
    base, weights = bf16_base(tmp_path)
    adapter = read_adapter(tmp_path / "a")
    assert weight_decomposed(adapter)
    out = export_comfyui(adapter, tmp_path / "x.safetensors", base=base, prefix="diffusion_model.decoder")
    exported = load_file(str(out))
    targets = {f"{m}.weight" for m in adapter.deltas}
    assert set(exported) == {f"diffusion_model.decoder.{t.removesuffix('.weight')}.diff" for t in targets}
    assert all(v.dtype == torch.float32 for v in exported.values())
    assert out.stat().st_size >= diff_bytes(adapter) > 5 * factor_bytes(adapter)  # rank 4 of width 64
    with safe_open(str(out), "pt") as handle:
        metadata = handle.metadata()
    assert (metadata["comfyui_patch"], metadata["diff_base_model"], metadata["source_kind"]) == ("diff", "base", "dora")
    assert metadata["step"] == "12"
    for strength in (1.0, 0.5):  # ComfyUI's strength on a diff is acetune's DoRA lerp
        decoder = load_model(base, dtype="bf16").model.decoder
        AdapterPatcher(decoder).load(tmp_path / "a", strength)
        acetune = decoder.state_dict()
        comfyui = comfyui_applies(weights, exported, strength, "diffusion_model.decoder")
        differing = sum(int((comfyui[t] != acetune[t]).sum()) for t in targets)
        total = sum(acetune[t].numel() for t in targets)
        assert differing <= total * 1e-3  # double rounding only (measured: 12 of 98,304 at strength 1)
        for t in targets:
            torch.testing.assert_close(comfyui[t].float(), acetune[t].float(), rtol=0, atol=2**-12)


def test_the_dora_factor_export_is_behind_a_flag_and_what_comfyui_makes_of_it_is_far_off(new_decoder, config_for,
                                                                                        tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA, **SELF_QV), tmp_path / "a")
    with pytest.raises(ConfigError, match="base model's weights") as err:
        export_comfyui(tmp_path / "a", tmp_path / "x.safetensors")
    assert "--checkpoint-dir" in str(err.value) and "--dora-as-lora" in str(err.value)
    assert not (tmp_path / "x.safetensors").exists()
    factors = load_file(str(export_comfyui(tmp_path / "a", tmp_path / "x.safetensors", dora_as_lora=True)))
    base = new_decoder().state_dict()
    exact = patched_state(new_decoder(), tmp_path / "a")
    errors = []
    for stem in {k.rsplit(".", 2)[0] for k in factors if k.endswith("lora_up.weight")}:
        target = stem.removeprefix("base_model.model.") + ".weight"
        w = base[target]
        delta = factors[f"{stem}.lora_up.weight"] @ factors[f"{stem}.lora_down.weight"]
        delta = delta * factors[f"{stem}.alpha"] / factors[f"{stem}.lora_down.weight"].shape[0]
        comfyui = factors[f"{stem}.dora_scale"] * (w + delta) / w.norm(dim=1, keepdim=True)  # its norm: ||W||
        errors.append(((comfyui - w) - (exact[target] - w)).norm() / (exact[target] - w).norm())
    assert min(errors) > 0.01  # the exact export (test above) is what fixes this


def test_a_diff_export_is_refused_on_a_base_of_another_shape(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA, **SELF_QV), tmp_path / "a")
    other = build_tiny_model("tiny-xl", 0)
    folder = save_model(other, tmp_path / "xl", silence_latent=synthetic_silence_latent(other.config), dtype="fp32")
    with pytest.raises(ModelLoadError, match="shape mismatch") as err:
        export_comfyui(tmp_path / "a", tmp_path / "x.safetensors", base=folder)
    assert str(folder) in str(err.value) and not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize(("where", "metadata", "expected"), [
    ("runs/mystyle/final", {"step": "120"}, "runs/mystyle/mystyle_step000120_comfyui.safetensors"),
    ("runs/mystyle/final/adapter_model.safetensors", {"step": "120"},
     "runs/mystyle/mystyle_step000120_comfyui.safetensors"),
    ("runs/mystyle/best", {"step": "80"}, "runs/mystyle/mystyle_best_step000080_comfyui.safetensors"),
    ("runs/mystyle/checkpoints/step_0000400", {"step": "400"}, "runs/mystyle/mystyle_step000400_comfyui.safetensors"),
    ("runs/mystyle/checkpoints/step_0000400/adapter_model.safetensors", {"step": "400"},
     "runs/mystyle/mystyle_step000400_comfyui.safetensors"),
    ("downloads/their_run/adapter", {}, "downloads/their_run/their_run_comfyui.safetensors"),  # other trainers
    ("downloads/cool_lora", {"step": "7"}, "downloads/cool_lora_step000007_comfyui.safetensors"),
    ("downloads/drums.safetensors", {}, "downloads/drums_comfyui.safetensors"),
])
def test_the_default_export_name_says_which_run_and_step(tmp_path, where, metadata, expected):
    path = tmp_path / where
    if path.suffix:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    else:
        path.mkdir(parents=True)
    assert default_export_path(path, metadata) == (tmp_path / expected).resolve()


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
