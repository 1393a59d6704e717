"""The adapter commands in-process: adapter info, export-comfyui (names, exact DoRA), --adapter-alpha, --rope-dtype."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from saved_adapters import saved_adapter

from acetune.adapters.patcher import AdapterPatcher
from acetune.cli.app import main
from acetune.config import AdapterConfig, AdapterKind
from acetune.config.schema import RopeDtype
from acetune.generate.studio import rope_dtype_for
from acetune.model import AttentionOptions, build_tiny_model
from acetune.model.checkpoint import load_model


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), captured.err  # rich wraps and pads: compare words


def test_adapter_info_shows_rank_alpha_and_scale_per_group_and_where_it_loads(new_decoder, config_for, tmp_path,
                                                                              capsys):
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA, target_mlp=True), tmp_path / "a",
                  metadata={"step": "40", "rope_dtype": "model", "precision": "bf16"})
    code, out, err = run(["adapter", "info", str(tmp_path / "a")], capsys)
    assert code == 0, err
    assert "format peft" in out and "kind lora" in out and "alpha from adapter_config.json" in out
    assert "rope_dtype model" in out and "precision bf16" in out and "step 40" in out
    # group, modules, layers, kind, rank, alpha, scale
    assert "self-attention q/k/v/o 8 2 lora 4 8 2" in out and "cross-attention q/k/v/o 8 2 lora 4 8 2" in out
    assert "MLP gate/up/down 6 2 lora 4 8 2" in out
    assert "PEFT yes" in out and "ACE-Step app yes" in out and "LyCORIS no" in out
    assert re.search(r"ComfyUI no it loads the weights but not lora_alpha", out)


def test_adapter_info_of_a_bare_file_needs_its_alpha(new_decoder, config_for, tmp_path, capsys):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA), tmp_path / "a")
    lone = tmp_path / "lone.safetensors"
    save_file(load_file(str(tmp_path / "a" / "adapter_model.safetensors")), str(lone), metadata={"format": "pt"})
    code, _, err = run(["adapter", "info", str(lone)], capsys)
    assert code == 2 and str(lone) in err and "lora_alpha" in err and "--alpha" in err
    code, out, err = run(["adapter", "info", str(lone), "--alpha", "8"], capsys)
    assert code == 0, err
    assert "alpha from given (--adapter-alpha)" in out and "kind dora" in out and "PEFT no" in out
    assert "ComfyUI approximate" in out


def test_export_comfyui_names_the_file_after_the_run_and_step(new_decoder, config_for, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "mystyle"
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), run_dir / "final", metadata={"step": "120"})
    code, out, err = run(["export-comfyui", str(run_dir / "final")], capsys)
    assert code == 0, err
    written = run_dir / "mystyle_step000120_comfyui.safetensors"
    assert written.is_file() and str(written) in out.replace(" ", "")
    assert sorted(p.name for p in run_dir.iterdir()) == ["final", written.name]


def test_export_comfyui_writes_dora_exactly_from_the_base_or_approximately_when_asked(new_decoder, config_for,
                                                                                     tiny_checkpoint, tmp_path, capsys):
    saved_adapter(new_decoder(), config_for(AdapterKind.DORA), tmp_path / "a")
    target = tmp_path / "x.safetensors"
    code, _, err = run(["export-comfyui", str(tmp_path / "a"), "--out", str(target)], capsys)
    assert code == 2 and "--checkpoint-dir" in err and "--dora-as-lora" in err and not target.exists()
    code, out, err = run(["export-comfyui", str(tmp_path / "a"), "--out", str(target), "--dora-as-lora"], capsys)
    assert code == 0 and "warning --dora-as-lora: ComfyUI applies a DoRA's weight change 12–32 % off" in out
    assert any(k.endswith(".dora_scale") for k in load_file(str(target)))
    code, out, err = run(["export-comfyui", str(tmp_path / "a"), "--out", str(target), "--overwrite",
                          "--checkpoint-dir", str(tiny_checkpoint)], capsys)
    assert code == 0, err
    assert re.search(r"exact dora export: full weight differences from .* for 16 tensors, about 196.6 kB \(fp32\)", out)
    assert f"for {tiny_checkpoint.name} only" in out
    exported = load_file(str(target))
    assert len(exported) == 16 and all(k.endswith(".diff") for k in exported)
    code, _, err = run(["export-comfyui", str(tmp_path / "a"), "--out", str(target), "--overwrite",
                        "--checkpoint-dir", str(tiny_checkpoint), "--diff-dtype", "bf16"], capsys)
    assert code == 2 and "fp32" in err and "fp16" in err


def test_adapter_alpha_reaches_merge_only_for_files_that_need_it(new_decoder, config_for, tiny_checkpoint, tmp_path,
                                                                 capsys):
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoint, checkpoints / "acestep-tiny")
    saved_adapter(new_decoder(), config_for(AdapterKind.LORA), tmp_path / "a")
    lone = tmp_path / "lone.safetensors"
    save_file(load_file(str(tmp_path / "a" / "adapter_model.safetensors")), str(lone))
    base = ["merge", "--checkpoint-dir", str(checkpoints / "acestep-tiny")]
    code, _, err = run([*base, "--adapter", str(lone), "--out", str(tmp_path / "m0")], capsys)
    assert code == 2 and "lora_alpha" in err and not (tmp_path / "m0").exists()  # refused before loading
    code, _, err = run([*base, "--adapter", str(tmp_path / "a"), "--adapter-alpha", "8", "--out",
                        str(tmp_path / "m0")], capsys)
    assert code == 2 and "--adapter-alpha 8 applies to no adapter" in err and "adapter_config.json" in err
    assert run([*base, "--adapter", str(lone), "--adapter-alpha", "8", "--out", str(tmp_path / "m1")], capsys)[0] == 0
    assert run([*base, "--adapter", str(tmp_path / "a"), "--out", str(tmp_path / "m2")], capsys)[0] == 0
    given, folder = (load_model(tmp_path / m).model.decoder.state_dict() for m in ("m1", "m2"))
    assert all(torch.equal(given[k], v) for k, v in folder.items())


def test_auto_rope_follows_what_the_adapters_were_trained_with():
    assert rope_dtype_for([])[0] is RopeDtype.MODEL
    assert rope_dtype_for([{"rope_dtype": "fp32", "acetune_version": "0.1.0"}]) == (
        RopeDtype.FP32, "as trained (recorded in the adapter)")
    assert rope_dtype_for([{"acetune_version": "0.1.0"}])[0] is RopeDtype.FP32  # acetune before the key existed
    assert rope_dtype_for([{"format": "pt"}])[0] is RopeDtype.MODEL  # other trainers: the official bf16 cast
    value, why = rope_dtype_for([{"rope_dtype": "fp32"}, {"rope_dtype": "model"}])
    assert value is RopeDtype.MODEL and "different" in why


def test_a_bf16_model_warns_when_an_adapter_was_trained_with_the_other_rope_convention(config_for, tmp_path):
    from acetune.adapters import attach, save_adapter

    for rope, warned in (("fp32", True), ("model", False)):
        decoder = build_tiny_model("tiny", 0).decoder.eval()
        save_adapter(attach(decoder, config_for(AdapterKind.LORA), seed=0), tmp_path / rope,
                     metadata={"rope_dtype": rope})
        live = build_tiny_model("tiny", 0, AttentionOptions(rope_dtype="model")).decoder.eval()
        notes = AdapterPatcher(live.to(torch.bfloat16)).load(tmp_path / rope).warnings
        assert any("--rope-dtype fp32" in note for note in notes) is warned, notes
        fp32_notes = AdapterPatcher(build_tiny_model("tiny", 0).decoder.eval()).load(tmp_path / rope).warnings
        assert not any("RoPE" in note for note in fp32_notes)  # the conventions coincide in fp32


def test_generate_renders_with_the_rope_convention_of_its_adapter(tiny_bundle, tmp_path, capsys):
    from acetune.adapters import attach, save_adapter

    decoder = load_model(tiny_bundle / "acestep-v15-turbo").model.decoder
    config = AdapterConfig(kind=AdapterKind.LORA, rank=4, alpha=8.0, dropout=0.0)
    save_adapter(attach(decoder, config, seed=0), tmp_path / "lora", metadata={"rope_dtype": "fp32"})
    args = ["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "x", "--duration", "2", "--device", "cpu",
            "--adapter", str(tmp_path / "lora"), "--out", str(tmp_path / "o")]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "RoPE frequencies: fp32 (as trained (recorded in the adapter))" in out
    sidecar = json.loads(next((tmp_path / "o").glob("*.json")).read_text())
    assert sidecar["rope_dtype"] == "fp32"
    code, _, err = run([*args, "--adapter-alpha", "4", "--overwrite"], capsys)
    assert code == 2 and "applies to no adapter" in err
    with safe_open(str(tmp_path / "lora" / "adapter_model.safetensors"), "pt") as handle:
        assert handle.metadata()["rope_dtype"] == "fp32"


@pytest.mark.parametrize("value", ["auto", "model", "fp32"])
def test_rope_dtype_choices_parse(value, tiny_bundle, tmp_path, capsys):
    code, out, err = run(["generate", "--checkpoint-dir", str(tiny_bundle), "--caption", "x", "--duration", "2",
                          "--device", "cpu", "--rope-dtype", value, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert f"RoPE frequencies: {'model' if value == 'auto' else value}" in out
