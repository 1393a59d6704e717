"""Loading and saving checkpoint folders: round trips, sharding, dtypes, meta init, and every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from acetune.errors import CheckpointWriteError, ConfigError, ModelLoadError
from acetune.model import build_tiny_model, load_model, save_model, synthetic_silence_latent


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def copy_checkpoint(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_round_trip_is_exact_and_loading_writes_nothing(tiny_checkpoint, tmp_path):
    before = snapshot(tiny_checkpoint)
    loaded = load_model(tiny_checkpoint)
    assert snapshot(tiny_checkpoint) == before
    reference = build_tiny_model("tiny", seed=0)
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert not any(t.is_meta for t in loaded.model.state_dict().values())
    assert loaded.variant.name == "turbo"
    assert loaded.silence_latent.shape == (1, 3000, 64)
    out = save_model(loaded.model, tmp_path / "again", silence_latent=loaded.silence_latent)
    again = load_model(out)
    assert all(torch.equal(again.model.state_dict()[k], v) for k, v in loaded.model.state_dict().items())
    assert torch.equal(again.silence_latent, loaded.silence_latent)
    assert json.loads((out / "config.json").read_text()) == json.loads((tiny_checkpoint / "config.json").read_text())


def test_silence_latent_file_is_channel_first(tiny_checkpoint):
    raw = torch.load(tiny_checkpoint / "silence_latent.pt", weights_only=True)
    assert raw.shape == (1, 64, 3000)
    loaded = load_model(tiny_checkpoint)
    assert torch.equal(loaded.silence_latent[0, 5], raw[0, :, 5])


def test_sharded_save_and_load(tmp_path):
    model = build_tiny_model("tiny", seed=4)
    out = save_model(model, tmp_path / "sharded", max_shard_size=400_000)
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()
    loaded = load_model(out)
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in model.state_dict().items())
    assert loaded.silence_latent is None


@pytest.mark.parametrize("dtype, expected", [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)])
def test_load_in_each_dtype(tiny_checkpoint, dtype, expected):
    loaded = load_model(tiny_checkpoint, dtype=dtype)
    assert {p.dtype for p in loaded.model.parameters()} == {expected}


def test_bf16_save_is_bf16_on_disk(tmp_path):
    out = save_model(build_tiny_model("tiny"), tmp_path / "bf16", dtype="bf16")
    tensors = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}


def test_partial_load_of_training_components(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint, components=("decoder", "null_condition_emb"))
    model = loaded.model
    assert not any(p.is_meta for p in model.decoder.parameters())
    assert not model.null_condition_emb.is_meta
    assert all(p.is_meta for p in model.encoder.parameters())
    assert all(p.is_meta for p in model.tokenizer.parameters())


def test_save_refuses_an_existing_folder(tiny_checkpoint, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointWriteError, match="already exists"):
        save_model(build_tiny_model("tiny"), target)
    assert (target / "notes.txt").read_text() == "keep me"


def test_save_copies_side_files_from_the_source(tiny_checkpoint, tmp_path):
    source = copy_checkpoint(tiny_checkpoint, tmp_path)
    (source / "modeling_acestep_v15_turbo.py").write_text("# the official modeling code\n")
    out = save_model(load_model(source).model, tmp_path / "merged", copy_from=source)
    assert (out / "modeling_acestep_v15_turbo.py").read_text() == "# the official modeling code\n"
    assert (out / "silence_latent.pt").read_bytes() == (source / "silence_latent.pt").read_bytes()


# --- bad input -------------------------------------------------------------------------------


def test_missing_config(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    (folder / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="not an ACE-Step checkpoint") as err:
        load_model(folder)
    assert str(folder) in str(err.value)


def test_malformed_config(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON") as err:
        load_model(folder)
    assert "config.json" in str(err.value)


def test_unknown_model_type(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    data = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**data, "model_type": "qwen3"}))
    with pytest.raises(ConfigError, match="model_type is 'qwen3'"):
        load_model(folder)


def test_truncated_weights(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="truncated or corrupt") as err:
        load_model(folder)
    assert "model.safetensors" in str(err.value)


def test_mis_keyed_and_mis_shaped_weights(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["decoder.layers.0.self_attn.q_proj.weight_renamed"] = tensors.pop("decoder.layers.0.self_attn.q_proj.weight")
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError) as err:
        load_model(folder)
    text = str(err.value)
    assert "1 missing key(s): decoder.layers.0.self_attn.q_proj.weight" in text
    assert "1 unexpected key(s): decoder.layers.0.self_attn.q_proj.weight_renamed" in text
    assert "model.safetensors" in text
    loose = load_model(folder, strict=False)  # a partial checkpoint loads when asked
    assert loose.model.decoder.layers[0].self_attn.q_proj.weight.is_meta

    tensors = load_file(str(tiny_checkpoint / "model.safetensors"))
    tensors["decoder.norm_out.weight"] = torch.ones(65)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"mis-shaped key\(s\): decoder.norm_out.weight: model \[64\] vs file \[65\]"):
        load_model(folder, strict=False)


def test_integer_weights_and_bad_dtype(tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="dtype 'int8' is not supported"):
        load_model(tiny_checkpoint, dtype="int8")
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["decoder.norm_out.weight"] = torch.ones(64, dtype=torch.int32)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="must be floating point"):
        load_model(folder)


def test_folder_of_checkpoints_names_the_candidates(tiny_checkpoint, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoint, root / "acestep-v15-turbo")
    (root / "vae").mkdir()
    with pytest.raises(ModelLoadError, match="acestep-v15-turbo; pass one of those"):
        load_model(root)


def test_file_instead_of_folder_and_missing_path(tiny_checkpoint, tmp_path):
    with pytest.raises(ModelLoadError, match="got a file"):
        load_model(tiny_checkpoint / "model.safetensors")
    with pytest.raises(ModelLoadError, match="no such file or folder"):
        load_model(tmp_path / "nowhere")


def test_broken_shard_index(tmp_path):
    out = save_model(build_tiny_model("tiny"), tmp_path / "sharded", max_shard_size=400_000)
    index = out / "model.safetensors.index.json"
    first = sorted(out.glob("model-*.safetensors"))[0]
    first.unlink()
    with pytest.raises(ModelLoadError, match="names files that are not there"):
        load_model(out)
    index.write_text("[]")
    with pytest.raises(ModelLoadError, match="malformed shard index"):
        load_model(out)


def test_silence_latent_that_is_not_a_plain_tensor(tiny_checkpoint, tmp_path):
    folder = copy_checkpoint(tiny_checkpoint, tmp_path)
    torch.save(torch.zeros(1, 3000, 64), folder / "silence_latent.pt")  # time-major: wrong layout
    with pytest.raises(ModelLoadError, match=r"shape \[1, 3000, 64\]; expected \[1, 64, frames\]"):
        load_model(folder)

    import datetime

    torch.save({"x": datetime.date(2020, 1, 1)}, folder / "silence_latent.pt")  # arbitrary pickles are refused
    with pytest.raises(ModelLoadError, match="cannot read the silence latent"):
        load_model(folder)


def test_synthetic_silence_latent_statistics():
    from acetune.model import named_config

    latent = synthetic_silence_latent(named_config("tiny"), frames=4000)
    assert abs(latent.mean().item() + 0.21) < 0.02 and abs(latent.std().item() - 0.96) < 0.02
