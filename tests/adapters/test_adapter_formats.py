"""read_adapter: every format into one neutral form, with PEFT's scaling rules and clear errors naming the file."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from saved_adapters import saved_adapter

from acetune.adapters.formats import read_adapter
from acetune.adapters.key_names import underscored_module
from acetune.adapters.patcher import AdapterPatcher
from acetune.config import AdapterKind, AttentionTargets
from acetune.errors import ModelLoadError


@pytest.mark.parametrize(("kind", "fmt", "file"), [
    (AdapterKind.LORA, "peft", "adapter_model.safetensors"),
    (AdapterKind.DORA, "peft", "adapter_model.safetensors"),
    (AdapterKind.LOKR, "lycoris", "lokr_weights.safetensors"),
    (AdapterKind.LOHA, "lycoris", "loha_weights.safetensors"),
    (AdapterKind.FULL, "acetune-full", "decoder.safetensors"),
])
def test_each_saved_format_is_detected_from_the_folder_or_its_file(new_decoder, config_for, tmp_path, kind, fmt, file):
    saved_adapter(new_decoder(), config_for(kind, attention=AttentionTargets.SELF), tmp_path / "a",
                  metadata={"trigger_word": "zx"})
    for path in (tmp_path / "a", tmp_path / "a" / file):
        adapter = read_adapter(path)
        assert (adapter.format, adapter.kind, adapter.path.name) == (fmt, kind.value, file)
        assert adapter.metadata["trigger_word"] == "zx" and adapter.warnings == ()
    if kind is AdapterKind.FULL:
        assert set(adapter.deltas) == set(new_decoder().state_dict())  # keyed by tensor name
        assert adapter.deltas["proj_in.1.bias"].target == "proj_in.1.bias"
        return
    expected = {f"layers.{i}.self_attn.{p}_proj" for i in (0, 1) for p in "qkvo"}
    assert set(adapter.deltas) == expected
    delta = adapter.deltas["layers.1.self_attn.k_proj"]
    assert (delta.module, delta.kind, delta.target) == ("layers.1.self_attn.k_proj", kind.value,
                                                         "layers.1.self_attn.k_proj.weight")
    assert all(t.device.type == "cpu" for t in delta.tensors.values())
    assert delta.scale == {"lora": 2.0, "dora": 2.0, "lokr": 1.0, "loha": 2.0}[kind.value]


@pytest.mark.parametrize(("name", "module"), [
    ("layers_0_self_attn_q_proj", "layers.0.self_attn.q_proj"),
    ("layers_17_cross_attn_o_proj", "layers.17.cross_attn.o_proj"),
    ("layers_3_mlp_down_proj", "layers.3.mlp.down_proj"),
    ("layers_3_cross_attn_norm", "layers.3.cross_attn_norm"),
    ("proj_in_1", "proj_in.1"),
    ("time_embed_linear_1", "time_embed.linear_1"),
    ("time_embed_r_time_proj", "time_embed_r.time_proj"),
    ("condition_embedder", "condition_embedder"),
    ("layers_0_self_attn_qproj", None),
    ("text_encoder_layers_0_q_proj", None),
])
def test_lycoris_names_map_back_by_the_decoder_structure(name, module):
    assert underscored_module(name) == module


def test_peft_alpha_pattern_and_rslora_scale_like_peft_itself(new_decoder, config_for, forward, tmp_path):
    from peft import PeftModel

    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    config_path = tmp_path / "a" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config.update(use_rslora=True, alpha_pattern={"layers.0.self_attn.q_proj": 2.0, "v_proj": 12.0})
    config_path.write_text(json.dumps(config))
    adapter = read_adapter(tmp_path / "a")
    assert adapter.deltas["layers.0.self_attn.q_proj"].scale == 2.0 / math.sqrt(4)
    assert adapter.deltas["layers.1.self_attn.q_proj"].scale == 8.0 / math.sqrt(4)
    assert adapter.deltas["layers.1.cross_attn.v_proj"].scale == 12.0 / math.sqrt(4)

    reference = new_decoder()
    PeftModel.from_pretrained(reference, str(tmp_path / "a"))
    patched = new_decoder()
    AdapterPatcher(patched).load(tmp_path / "a")
    torch.testing.assert_close(forward(patched), forward(reference), rtol=1e-5, atol=1e-5)

    config_path.write_text(json.dumps({**config, "trigger_word": "zx"}))  # ALT writes it into the config
    assert read_adapter(tmp_path / "a").metadata["trigger_word"] == "zx"


def _patched(new_decoder, path, **load) -> dict[str, torch.Tensor]:
    decoder = new_decoder()
    AdapterPatcher(decoder).load(path, **load)
    return decoder.state_dict()


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6)


def test_a_bare_peft_file_takes_its_alpha_from_the_header_or_the_user_or_is_refused(new_decoder, config_for,
                                                                                     tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")  # rank 4, alpha 8
    as_trained = _patched(new_decoder, tmp_path / "a")
    weights = tmp_path / "a" / "adapter_model.safetensors"
    tensors = load_file(str(weights))

    copied = tmp_path / "copied" / "adapter_model.safetensors"  # acetune's own file, its config left behind
    copied.parent.mkdir()
    shutil.copy(weights, copied)
    adapter = read_adapter(copied)
    assert (adapter.format, adapter.kind) == ("peft", "lora")
    assert adapter.alpha_source == "acetune_adapter_config in the file"
    assert {d.scale for d in adapter.deltas.values()} == {2.0} and {d.alpha for d in adapter.deltas.values()} == {8.0}
    _same_state(as_trained, _patched(new_decoder, copied))

    lone = _write(tmp_path / "lone.safetensors", tensors, {"format": "pt"})  # what PEFT itself writes
    with pytest.raises(ModelLoadError, match="lora_alpha") as err:
        read_adapter(lone)
    assert str(lone) in str(err.value) and "--adapter-alpha" in str(err.value)
    with pytest.raises(ModelLoadError, match="lora_alpha"):
        AdapterPatcher(new_decoder()).load(lone)  # generate and merge refuse it too
    given = read_adapter(lone, alpha=8)
    assert given.alpha_source == "given (--adapter-alpha)" and {d.scale for d in given.deltas.values()} == {2.0}
    _same_state(as_trained, _patched(new_decoder, lone, alpha=8))

    for recorded in ({"transformer.r": 4, "transformer.lora_alpha": 8, "transformer.use_rslora": False},
                     {"r": 4, "lora_alpha": 8}):  # diffusers: pipeline (prefixed) and model-level spellings
        diffusers = _write(tmp_path / "d.safetensors", tensors, {"lora_adapter_metadata": json.dumps(recorded)})
        adapter = read_adapter(diffusers, alpha=3)  # the file's own alpha wins over a given one
        assert adapter.alpha_source == "lora_adapter_metadata in the file"
        assert {d.scale for d in adapter.deltas.values()} == {2.0}
    both = {"transformer.lora_alpha": 8, "text_encoder.lora_alpha": 4}  # the decoder is diffusers' transformer
    _write(tmp_path / "d.safetensors", tensors, {"lora_adapter_metadata": json.dumps(both)})
    assert {d.scale for d in read_adapter(tmp_path / "d.safetensors").deltas.values()} == {2.0}
    other = {"text_encoder.lora_alpha": 4}  # says nothing about the decoder's alpha
    _write(tmp_path / "d.safetensors", tensors, {"lora_adapter_metadata": json.dumps(other)})
    with pytest.raises(ModelLoadError, match="lora_alpha"):
        read_adapter(tmp_path / "d.safetensors")


def test_a_diffusers_header_pattern_names_diffusers_modules(new_decoder, config_for, tmp_path):
    """diffusers writes alpha_pattern / rank_pattern under its own module names (to_q, to_out.0)."""
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")  # rank 4
    tensors = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    header = {"transformer.r": 4, "transformer.lora_alpha": 8,
              "transformer.alpha_pattern": {"layers.0.self_attn.to_q": 4, "to_out.0": 12}}
    path = _write(tmp_path / "d.safetensors", tensors, {"lora_adapter_metadata": json.dumps(header)})
    scales = {name: d.scale for name, d in read_adapter(path).deltas.items()}
    assert scales["layers.0.self_attn.q_proj"] == 1.0 and scales["layers.1.self_attn.q_proj"] == 2.0
    assert {s for name, s in scales.items() if name.endswith("o_proj")} == {3.0}


def test_lora_up_down_files_without_alpha_apply_at_alpha_over_rank_one(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    tensors = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    renamed = {k.replace("lora_A.weight", "lora_down.weight").replace("lora_B.weight", "lora_up.weight"): v
               for k, v in tensors.items()}
    lone = _write(tmp_path / "lone.safetensors", renamed)
    adapter = read_adapter(lone)
    assert (adapter.format, adapter.kind, adapter.alpha_source) == (
        "comfyui", "lora", "none (alpha/rank = 1, the ComfyUI and kohya rule)")
    assert all(d.scale == 1.0 and d.alpha is None for d in adapter.deltas.values())
    assert "no alpha" in adapter.warnings[0] and "--adapter-alpha" in adapter.warnings[0]
    assert {d.scale for d in read_adapter(lone, alpha=8).deltas.values()} == {2.0}


def test_nested_adapter_folder_of_other_trainers_is_found(new_decoder, config_for, tmp_path):
    saved_adapter(new_decoder(), config_for(AdapterKind.LOKR), tmp_path / "run" / "adapter")
    assert read_adapter(tmp_path / "run").path == tmp_path / "run" / "adapter" / "lokr_weights.safetensors"


def _zero() -> torch.Tensor:
    return torch.zeros(2, 2)


def _write(path, tensors, metadata=None):
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_unreadable_or_unknown_adapters_are_model_load_errors_naming_the_file(new_decoder, config_for, tmp_path):
    lora_folder = tmp_path / "lora"
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), lora_folder)
    weights = lora_folder / "adapter_model.safetensors"
    good = load_file(str(weights))
    cases = {
        "no such adapter": tmp_path / "nowhere",
        "not a .safetensors": _write(tmp_path / "x.safetensors", {"a": _zero()}).rename(tmp_path / "x.bin"),
        "no adapter here": tmp_path,
        "no known adapter format": _write(tmp_path / "odd.safetensors", {"model.foo.weight": _zero(),
                                                                         "lycoris_textenc_q.lokr_w1": _zero()}),
        "mixes adapter formats": _write(tmp_path / "mixed.safetensors", {
            **{f"lycoris_layers_0_self_attn_q_proj.lokr_w{i}": _zero() for i in "12"},
            **{f"lycoris_layers_0_self_attn_k_proj.hada_w{i}_{x}": _zero() for i in "12" for x in "ab"}}),
        "mixes key prefixes": _write(tmp_path / "prefixes.safetensors", {
            "base_model.model.layers.0.self_attn.q_proj.lora_down.weight": _zero(),
            "base_model.model.layers.0.self_attn.q_proj.lora_up.weight": _zero(),
            "lycoris_layers_0_self_attn_k_proj.lora_down.weight": _zero(),
            "lycoris_layers_0_self_attn_k_proj.lora_up.weight": _zero()}),
        "incomplete": _write(tmp_path / "cut.safetensors", {
            "diffusion_model.decoder.layers.0.self_attn.q_proj.lora_down.weight": _zero()}),
    }
    for message, path in cases.items():
        with pytest.raises(ModelLoadError, match=message) as err:
            read_adapter(path)
        assert str(path) in str(err.value), message
    with pytest.raises(ModelLoadError, match=r"e\.g\. \['lycoris_textenc_q\.lokr_w1', 'model\.foo\.weight'\]"):
        read_adapter(cases["no known adapter format"])

    _write(weights, {**good, "base_model.model.layers.0.self_attn.q_proj.lora_down.weight": _zero()})
    with pytest.raises(ModelLoadError, match="not PEFT LoRA keys"):
        read_adapter(lora_folder)
    weights.write_bytes(b"\x00" * 7)
    with pytest.raises(ModelLoadError, match="cannot read the adapter weights") as err:
        read_adapter(lora_folder)
    assert "adapter_model.safetensors" in str(err.value)
    config = lora_folder / "adapter_config.json"
    text = config.read_text()
    config.write_text(text[:20])
    with pytest.raises(ModelLoadError, match="cannot read the PEFT adapter config") as err:
        read_adapter(lora_folder)
    assert "adapter_config.json" in str(err.value)
    config.write_text(text.replace('"LORA"', '"LOHA"'))
    with pytest.raises(ModelLoadError, match="'LOHA' is not supported"):
        read_adapter(lora_folder)
    weights.unlink()
    with pytest.raises(ModelLoadError, match="adapter_model.safetensors is missing"):
        read_adapter(lora_folder)
    _write(lora_folder / "lokr_weights.safetensors", {"a": _zero()})
    with pytest.raises(ModelLoadError, match="more than one adapter here"):
        read_adapter(lora_folder)
