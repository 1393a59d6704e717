"""AdapterPatcher: patched weights reproduce the live PEFT/LyCORIS adapters, mix, rescale and restore exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from saved_adapters import saved_adapter

from acetune.adapters import attach
from acetune.adapters.lycoris_backend import _PRESET_ATTRIBUTES
from acetune.adapters.patcher import AdapterPatcher
from acetune.config import AdapterKind
from acetune.errors import ConfigError, ModelLoadError
from acetune.model import build_tiny_model

CASES = {
    "lora": (AdapterKind.LORA, {}),
    "dora": (AdapterKind.DORA, {}),
    "lokr": (AdapterKind.LOKR, {}),  # both Kronecker halves full: scale 1
    "lokr-low-rank": (AdapterKind.LOKR, {"rank": 2, "decompose_both": True}),  # w1_a/b, w2_a/b, scale 8/2
    "loha": (AdapterKind.LOHA, {}),
    "full": (AdapterKind.FULL, {}),
    "lora-biases": (AdapterKind.LORA, {"bias": "all"}),  # PEFT saves the 9 trained decoder biases whole
}
MODULES = {"full": 58, "lora-biases": 22 + 9}  # else 2 layers x (4 + 4 + 3) projections


def state(decoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in decoder.state_dict().items()}


@pytest.mark.parametrize("case", CASES)
def test_patched_decoder_matches_the_live_adapter(new_decoder, config_for, forward, tmp_path, case):
    kind, changes = CASES[case]
    live = saved_adapter(new_decoder(), config_for(kind, target_mlp=True, **changes), tmp_path / "a")
    expected = forward(live.decoder)
    fresh = new_decoder()
    base = forward(fresh)
    loaded = AdapterPatcher(fresh).load(tmp_path / "a")
    assert (loaded.name, loaded.kind, loaded.strength) == ("a", kind.value, 1.0)
    assert loaded.modules == MODULES.get(case, 22)
    assert (forward(fresh) - base).abs().max() > 1e-3  # the adapter really changes the output
    torch.testing.assert_close(forward(fresh), expected, rtol=1e-5, atol=1e-5)


def test_upstream_style_lycoris_files_patch_every_linear_and_conv_like_lycoris(new_decoder, forward, tmp_path):
    """The upstream LoKr call wraps all 272 Linear/Conv1d modules (proj_in.1, time_embed*, condition_embedder);
    low-rank Tucker factors on the conv and a LyCORIS DoRA (dora_scale [out, 1]) on top."""
    from lycoris import LycorisNetwork, create_lycoris

    saved = {name: getattr(LycorisNetwork, name) for name in _PRESET_ATTRIBUTES}
    try:
        for algo, extra in (("lokr", {"decompose_both": True, "use_tucker": True, "weight_decompose": True}),
                            ("loha", {"use_tucker": True})):
            decoder = new_decoder()
            network = create_lycoris(decoder, 1.0, linear_dim=2, linear_alpha=4.0, algo=algo, **extra)
            network.apply_to()
            generator = torch.Generator().manual_seed(3)
            with torch.no_grad():
                for param in network.parameters():
                    param.add_(torch.randn(param.shape, generator=generator) * 0.1)
            names = {lora.lora_name for lora in network.loras}
            assert {"lycoris_proj_in_1", "lycoris_time_embed_r_linear_1", "lycoris_condition_embedder"} <= names
            expected = forward(decoder)
            path = tmp_path / f"{algo}_weights.safetensors"
            network.save_weights(str(path), None, {})
            fresh = new_decoder()
            loaded = AdapterPatcher(fresh).load(path)
            assert loaded.modules == len(names) == 2 * 11 + 8
            torch.testing.assert_close(forward(fresh), expected, rtol=1e-5, atol=1e-5)
    finally:
        for name, value in saved.items():
            setattr(LycorisNetwork, name, value)


def test_lora_and_lokr_mix_rescale_and_restore_bit_exactly(new_decoder, config_for, forward, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA, target_mlp=True), tmp_path / "lora")
    saved_adapter(new_decoder(), config_for(AdapterKind.LOKR), tmp_path / "lokr", seed=1)
    decoder = new_decoder()
    base = state(decoder)
    patcher = AdapterPatcher(decoder)
    patcher.load(tmp_path / "lora", 0.7)
    patcher.load(tmp_path / "lokr", -0.5)
    assert [(a.name, a.kind, a.strength) for a in patcher.loaded] == [("lora", "lora", 0.7), ("lokr", "lokr", -0.5)]
    mixed = state(decoder)
    touched = {k for k in base if not torch.equal(base[k], mixed[k])}
    assert len(touched) == 22 and set(patcher._backups) == touched  # backups of the touched weights only, on CPU
    assert all(b.device.type == "cpu" for b in patcher._backups.values())

    # both adapters add up on a shared weight: W + 0.7 ΔW_lora - 0.5 ΔW_lokr
    key = "layers.0.self_attn.q_proj.weight"
    lora_only, lokr_only = AdapterPatcher(new_decoder()), AdapterPatcher(new_decoder())
    lora_only.load(tmp_path / "lora", 0.7)
    lokr_only.load(tmp_path / "lokr", -0.5)
    summed = (lora_only.decoder.state_dict()[key] + lokr_only.decoder.state_dict()[key] - base[key])
    torch.testing.assert_close(mixed[key], summed, rtol=0, atol=1e-6)

    patcher.set_strength("lora", 1.5)
    assert patcher.loaded[0].strength == 1.5 and not torch.equal(state(decoder)[key], mixed[key])
    patcher.set_strength("lora", 0.7)
    assert all(torch.equal(v, mixed[k]) for k, v in state(decoder).items())  # recomputed, no drift

    patcher.unload("lora")
    lokr_alone = state(decoder)
    assert torch.equal(lokr_alone[key], lokr_only.decoder.state_dict()[key])
    mlp = "layers.1.mlp.up_proj.weight"  # only the LoRA touched the MLP: back to the base exactly
    assert torch.equal(lokr_alone[mlp], base[mlp]) and mlp not in patcher._backups
    patcher.set_strength("lokr", 2.0)
    patcher.unload()
    assert patcher.loaded == () and patcher._backups == {}
    assert all(torch.equal(v, base[k]) for k, v in state(decoder).items())


def test_failures_name_the_file_and_leave_the_decoder_alone(new_decoder, config_for, forward, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a", metadata={"variant": "base"})
    decoder = new_decoder()
    base = state(decoder)
    patcher = AdapterPatcher(decoder, variant="turbo")
    for strength in (2.5, float("nan"), -3):
        with pytest.raises(ConfigError, match="strength"):
            patcher.load(tmp_path / "a", strength)
    with pytest.raises(ModelLoadError, match="no such adapter"):
        patcher.load(tmp_path / "missing")
    loaded = patcher.load(tmp_path / "a", 1.0)
    assert any("base" in w and "turbo" in w and "may sound off" in w for w in loaded.warnings)
    assert loaded.metadata["variant"] == "base" and loaded.format == "peft"
    with pytest.raises(ConfigError, match="already loaded"):
        patcher.load(tmp_path / "a")
    with pytest.raises(ConfigError, match="already loaded"):
        patcher.load(tmp_path / "b", name=loaded.name)
    for call in (lambda: patcher.unload("nope"), lambda: patcher.set_strength("nope", 1.0)):
        with pytest.raises(ConfigError, match="nope"):
            call()
    with pytest.raises(ConfigError, match="outside"):
        patcher.set_strength("a", 2.01)
    patcher.unload("a")
    assert all(torch.equal(v, base[k]) for k, v in state(decoder).items())


def test_an_adapter_for_another_model_is_refused_with_what_differs(new_decoder, config_for, tmp_path):
    xl = build_tiny_model("tiny-xl", 0).decoder.eval()  # wider decoder, same module names
    saved_adapter(xl, config_for(AdapterKind.LOKR), tmp_path / "xl")
    decoder = new_decoder()
    base = state(decoder)
    patcher = AdapterPatcher(decoder)
    with pytest.raises(ModelLoadError, match=r"made for another base model") as err:
        patcher.load(tmp_path / "xl")
    message = str(err.value)
    assert "lokr_weights.safetensors" in message and "[96, 96]" in message and "[64, 64]" in message

    # an adapter for a deeper decoder: layers this one lacks are listed
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "deep")
    weights = tmp_path / "deep" / "adapter_model.safetensors"
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata()
    tensors = {k.replace("layers.1.", "layers.23."): v for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata=metadata)
    with pytest.raises(ModelLoadError, match=r"not in this decoder \(2 layers\), e\.g\. layers\.23\.") as err:
        patcher.load(tmp_path / "deep")
    assert "adapter_model.safetensors" in str(err.value)
    assert patcher.loaded == () and all(torch.equal(v, base[k]) for k, v in state(decoder).items())


def test_a_decoder_with_injected_adapter_layers_is_refused(new_decoder, config_for):
    for kind in (AdapterKind.LORA, AdapterKind.LOKR):
        decoder = new_decoder()
        attach(decoder, config_for(kind))
        with pytest.raises(ConfigError, match="already has an adapter"):
            AdapterPatcher(decoder)
    decoder = new_decoder()
    patcher = AdapterPatcher(decoder)
    attach(decoder, config_for(AdapterKind.LORA))
    with pytest.raises(ConfigError, match="already has an adapter"):
        patcher.load("anything")


def test_bf16_decoder_is_patched_in_float32_rounded_once_and_restored(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA), tmp_path / "dora")
    saved_adapter(new_decoder(), config_for(AdapterKind.LOKR), tmp_path / "lokr", seed=1)
    reference = new_decoder()  # fp32 patching of the bf16-rounded base, rounded to bf16 at the end
    reference.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in reference.state_dict().items()})
    AdapterPatcher(reference).load(tmp_path / "dora")
    decoder = new_decoder().to(torch.bfloat16)
    base = state(decoder)
    patcher = AdapterPatcher(decoder)
    patcher.load(tmp_path / "dora")
    key = "layers.1.cross_attn.v_proj.weight"
    assert decoder.state_dict()[key].dtype == torch.bfloat16
    assert torch.equal(decoder.state_dict()[key], reference.state_dict()[key].to(torch.bfloat16))
    patcher.load(tmp_path / "lokr", 0.3)
    patcher.set_strength("dora", -1.0)
    patcher.unload()
    assert all(torch.equal(v, base[k]) for k, v in state(decoder).items())


def test_two_runs_final_folders_mix_under_distinct_names(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a" / "final")
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "b" / "final", seed=1)
    patcher = AdapterPatcher(new_decoder())
    patcher.load(tmp_path / "a" / "final", 0.5)
    patcher.load(tmp_path / "b" / "final", 0.5)
    assert [a.name for a in patcher.loaded] == ["final", "final-2"]
