"""diffusers' LoRA header in saved PEFT files, `export_diffusers` (names, scales, refusals) and the CLI around it.

Loading into diffusers' own transformer checks strength: the `AceStepLoraLoaderMixin` class methods are
exactly what `pipe.load_lora_weights` runs (lora_state_dict, then load_lora_into_transformer); the
pipeline itself is exercised in tests/model/test_diffusers_pipeline.py.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from saved_adapters import saved_adapter

from acetune.adapters import save_adapter
from acetune.adapters.comfyui import export_comfyui
from acetune.adapters.diffusers_export import DiffusersFormatError, export_diffusers
from acetune.cli.app import main
from acetune.config import AdapterKind, AttentionTargets
from acetune.errors import CheckpointWriteError, ConfigError
from acetune.model.diffusers_keys import key_to_diffusers


def header(path) -> dict[str, str]:
    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata() or {})


@pytest.fixture(scope="module")
def transformer():
    """diffusers' AceStepTransformer1DModel holding the tiny seed-0 decoder's weights."""
    from diffusers import AceStepTransformer1DModel

    from acetune.model import build_tiny_model
    from acetune.model.diffusers_config import component_configs

    decoder = build_tiny_model("tiny", 0).decoder
    config = component_configs(decoder.config, "0.42.1")["transformer"]
    module = AceStepTransformer1DModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    module.load_state_dict({key_to_diffusers(f"decoder.{k}")[1]: v for k, v in decoder.state_dict().items()})
    return module.eval()


def diffusers_output(transformer, path, inputs, *, lokr: bool = False) -> torch.Tensor:
    from diffusers.loaders import AceStepLoraLoaderMixin

    module = copy.deepcopy(transformer)
    if lokr:
        module.load_lora_adapter(str(path), prefix="transformer", use_safetensors=True)
    else:
        state, metadata = AceStepLoraLoaderMixin.lora_state_dict(str(path), return_lora_metadata=True)
        AceStepLoraLoaderMixin.load_lora_into_transformer(state, module, metadata=metadata)
    with torch.no_grad():
        return module(*inputs).sample


def test_a_saved_peft_file_carries_diffusers_header(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA, dropout=0.1), tmp_path / "a")
    data = json.loads(header(tmp_path / "a" / "adapter_model.safetensors")["lora_adapter_metadata"])
    assert data["transformer.r"] == 4 and data["transformer.lora_alpha"] == 8.0 and data["transformer.use_dora"]
    assert data["transformer.lora_dropout"] == 0.0  # inference: diffusers would leave dropout layers training
    assert "layers.1.cross_attn.to_out.0" in data["transformer.target_modules"]
    assert len(data["transformer.target_modules"]) == 16 and not data["transformer.alpha_pattern"]


@pytest.mark.parametrize("changes", [{"projections": ("v_proj", "o_proj")}, {"bias": "all"}])
def test_no_header_where_diffusers_cannot_read_the_peft_file(new_decoder, config_for, tmp_path, changes):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA, **changes), tmp_path / "a")
    assert "lora_adapter_metadata" not in header(tmp_path / "a" / "adapter_model.safetensors")


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA])
def test_export_names_and_strength(new_decoder, config_for, forward, inputs, transformer, tmp_path, kind):
    config = config_for(kind, attention=AttentionTargets.SELF, projections=("v_proj",), target_mlp=True)
    live = saved_adapter(new_decoder(), config, tmp_path / "a", metadata={"trigger_word": "zx"})
    out = export_diffusers(tmp_path / "a", tmp_path / "a_diffusers.safetensors")
    tensors, meta = load_file(str(out)), header(out)
    parts = ["lora_A.weight", "lora_B.weight"] + (["lora_magnitude_vector"] if kind is AdapterKind.DORA else [])
    modules = [f"layers.{i}.self_attn.to_v" for i in (0, 1)] + \
        [f"layers.{i}.mlp.{p}" for i in (0, 1) for p in ("gate_proj", "up_proj", "down_proj")]
    assert set(tensors) == {f"transformer.{m}.{part}" for m in modules for part in parts}
    if kind is AdapterKind.DORA:
        assert tensors["transformer.layers.0.mlp.down_proj.lora_magnitude_vector"].shape == (64,)
    assert meta["trigger_word"] == "zx" and meta["format"] == "pt" and meta["source_format"] == "peft"
    assert torch.equal(diffusers_output(transformer, out, inputs), forward(live.decoder))


def test_comfyui_and_rank_patterns_export_at_their_strength(new_decoder, config_for, forward, inputs, transformer,
                                                            tmp_path):
    live = saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    comfy = export_comfyui(tmp_path / "a", tmp_path / "c.safetensors")
    assert "lora_adapter_metadata" not in header(comfy)  # it described the PEFT keys, not ComfyUI's
    tensors = load_file(str(comfy))  # one module at another alpha: it goes into alpha_pattern
    tensors["base_model.model.layers.1.self_attn.q_proj.alpha"] = torch.tensor(2.0)
    from safetensors.torch import save_file

    save_file(tensors, str(tmp_path / "mixed.safetensors"))
    out = export_diffusers(tmp_path / "mixed.safetensors", tmp_path / "d.safetensors")
    data = json.loads(header(out)["lora_adapter_metadata"])
    assert data["transformer.alpha_pattern"] == {"layers.1.self_attn.to_q": 2.0}
    with torch.no_grad():
        live.decoder.layers[1].self_attn.q_proj.scaling["default"] = 0.5  # 2 / rank 4
    assert torch.equal(diffusers_output(transformer, out, inputs), forward(live.decoder))


@pytest.mark.parametrize("changes", [{"factor": 4}, {"target_mlp": True, "decompose_both": True, "rank": 2}])
def test_lokr_exports_with_its_scale_baked_in(new_decoder, config_for, forward, inputs, transformer, tmp_path,
                                               changes):
    live = saved_adapter(new_decoder(), config_for(AdapterKind.LOKR, **changes), tmp_path / "a")
    out = export_diffusers(tmp_path / "a", tmp_path / "k.safetensors")
    tensors = load_file(str(out))
    assert "lora_adapter_metadata" not in header(out)  # diffusers infers LoKrConfig from the shapes, alpha = r
    assert any(k.endswith(".lokr_w2_a") for k in tensors) and all(k.startswith("transformer.layers.") for k in tensors)
    if changes.get("decompose_both"):
        assert "transformer.layers.0.mlp.up_proj.lokr_w1_a" in tensors
    ours, theirs = forward(live.decoder), diffusers_output(transformer, out, inputs, lokr=True)
    assert (ours - theirs).abs().max() <= 1e-5  # float noise of another kron order (measured <= 1e-6)
    assert (ours - forward(new_decoder())).abs().max() > 1e-2


@pytest.mark.parametrize("kind, match", [(AdapterKind.LOHA, "diffusers has no LoHa loader"),
                                         (AdapterKind.FULL, "full fine-tune is not an adapter")])
def test_what_diffusers_cannot_load_is_refused_by_name(new_decoder, config_for, tmp_path, kind, match):
    saved_adapter(new_decoder(), config_for(kind), tmp_path / "a")
    with pytest.raises(DiffusersFormatError, match=match) as err:
        export_diffusers(tmp_path / "a", tmp_path / "x.safetensors")
    assert "merge --format diffusers" in err.value.fix and err.value.path.parent == tmp_path / "a"
    assert not (tmp_path / "x.safetensors").exists()


def test_trained_biases_and_bad_outputs_are_refused(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA, bias="all"), tmp_path / "b")
    with pytest.raises(DiffusersFormatError, match="also trained biases"):
        export_diffusers(tmp_path / "b", tmp_path / "x.safetensors")
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    with pytest.raises(ConfigError, match="must end in .safetensors"):
        export_diffusers(tmp_path / "a", tmp_path / "x.bin")
    (tmp_path / "taken.safetensors").write_bytes(b"mine")
    with pytest.raises(CheckpointWriteError, match="already exists"):
        export_diffusers(tmp_path / "a", tmp_path / "taken.safetensors")
    assert (tmp_path / "taken.safetensors").read_bytes() == b"mine"
    with pytest.raises(ConfigError, match="reserved"):
        save_adapter(saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "c"), tmp_path / "d",
                     metadata={"lora_adapter_metadata": "{}"})


def test_cli_export_and_info_say_how_diffusers_loads_it(new_decoder, config_for, tmp_path, capsys):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "style")
    saved_adapter(new_decoder(), config_for(AdapterKind.LOKR), tmp_path / "kron")
    saved_adapter(new_decoder(), config_for(AdapterKind.LOHA), tmp_path / "hada")
    def info(name: str) -> str:
        assert main(["adapter", "info", str(tmp_path / name)]) == 0
        return " ".join(capsys.readouterr().out.split())  # the table wraps long cells

    assert "diffusers yes pipe.load_lora_weights(<this folder>), at the trained strength" in info("style")
    assert 'writes FILE, then pipe.transformer.load_lora_adapter(FILE, prefix="transformer")' in info("kron")
    assert "diffusers no diffusers has no LoHa loader" in info("hada")
    assert main(["export-diffusers", str(tmp_path / "kron")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "kron_diffusers.safetensors").is_file() and "pipe.transformer.load_lora_adapter(" in out
    assert main(["export-diffusers", str(tmp_path / "hada"), "--out", str(tmp_path / "h.safetensors")]) == 2
    assert "diffusers has no LoHa loader" in capsys.readouterr().err


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.DORA, AdapterKind.LOKR])
def test_acetune_reads_diffusers_files_at_their_strength(new_decoder, config_for, tmp_path, kind):
    from acetune.adapters.formats import read_adapter
    from acetune.adapters.patcher import AdapterPatcher

    saved_adapter(new_decoder(), config_for(kind, factor=4) if kind is AdapterKind.LOKR else config_for(kind),
                  tmp_path / "a")
    out = export_diffusers(tmp_path / "a", tmp_path / "hub" / "pytorch_lora_weights.safetensors")  # diffusers' layout
    read = read_adapter(tmp_path / "hub")
    assert (read.path, read.format, read.kind, read.warnings) == (out, "diffusers", kind.value, ())
    assert set(read.deltas) == set(read_adapter(tmp_path / "a").deltas)  # official module names again

    def patched(path) -> dict[str, torch.Tensor]:
        decoder = new_decoder()
        AdapterPatcher(decoder).load(path, 0.8)
        return decoder.state_dict()

    ours, theirs = patched(tmp_path / "a"), patched(out)
    if kind is AdapterKind.LOKR:  # the scale rides in the first factor: kron(s*w1, w2) rounds differently
        assert all((ours[k] - theirs[k]).abs().max() <= 1e-6 for k in ours)
    else:
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_diffusers_file_without_header_or_with_a_bad_one(new_decoder, config_for, tmp_path):
    from safetensors.torch import save_file

    from acetune.adapters.formats import read_adapter
    from acetune.errors import ModelLoadError

    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    tensors = load_file(str(export_diffusers(tmp_path / "a", tmp_path / "d.safetensors")))
    save_file(tensors, str(tmp_path / "bare.safetensors"))
    bare = read_adapter(tmp_path / "bare.safetensors")
    assert {d.scale for d in bare.deltas.values()} == {1.0} and "alpha/rank = 1 (diffusers' rule)" in bare.warnings[0]
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"lora_adapter_metadata": "{not json"})
    with pytest.raises(ModelLoadError, match="lora_adapter_metadata header is malformed") as err:
        read_adapter(tmp_path / "bad.safetensors")
    assert err.value.path == tmp_path / "bad.safetensors"
