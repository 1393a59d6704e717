"""Built-in presets: load, validate, hold only real deltas; adapter-aware adjustment; auto selection."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from acetune.config import (
    BUILTIN_PRESETS,
    AdapterKind,
    RunConfig,
    adapt_preset,
    auto_preset,
    config_from_dict,
    config_to_dict,
    detect_device_memory_gib,
    load_preset_data,
    preset_for_adapter,
    resolve_config,
    validate,
)
from acetune.errors import ConfigError


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_packaged_preset_is_listed():
    files = {p.name[:-5] for p in (resources.files("acetune.config") / "presets").iterdir() if p.name.endswith(".toml")}
    assert files == set(BUILTIN_PRESETS)


@pytest.mark.parametrize("name", BUILTIN_PRESETS)
def test_preset_loads_validates_and_holds_only_deltas(name):
    data = load_preset_data(name)
    assert isinstance(data.pop("description"), str) and "config_version" not in data
    config = resolve_config(preset=name)
    validate(config)
    assert config_from_dict(data, source=name) == config
    defaults = _flat(config_to_dict(RunConfig()))
    resolved = _flat(config_to_dict(config))
    deltas = _flat(data)
    assert deltas, "a preset must change something"
    for key in deltas:
        assert resolved[key] != defaults[key], f"{name}: {key} repeats the default"


@pytest.mark.parametrize("name", BUILTIN_PRESETS)
def test_presets_keep_plain_adamw(name):
    assert "optimizer" not in load_preset_data(name).get("optim", {})  # adamw8bit needs the optional bitsandbytes
    assert resolve_config(preset=name).optim.optimizer.value == "adamw"


def test_preset_values_follow_the_spec():
    c8 = resolve_config(preset="vram_8gb")
    assert (c8.adapter.rank, c8.adapter.alpha, c8.adapter.target_mlp, c8.optim.grad_accum) == (16, 32.0, False, 8)
    assert c8.data.crop_frames == 750 and c8.loop.gradient_checkpointing == 1.0
    c24 = resolve_config(preset="vram_24gb_plus")
    assert (c24.adapter.rank, c24.data.batch_size, c24.optim.grad_accum, c24.adapter.target_mlp) == (128, 2, 2, True)
    quick = resolve_config(preset="quick_test")
    assert (quick.loop.epochs, quick.schedule.warmup_steps, quick.data.crop_frames) == (10, 10, 750)
    assert resolve_config(preset="high_quality").optim.lr == 2e-4


def test_unknown_preset_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown preset 'vram_8g'; did you mean vram_8gb\?"):
        load_preset_data("vram_8g", folder=tmp_path)


def test_lora_family_keeps_the_preset():
    for kind in ("lora", "dora"):
        data = preset_for_adapter("vram_8gb", kind)
        assert data["adapter"]["rank"] == 16
    assert preset_for_adapter("vram_8gb", "dora")["adapter"]["kind"] == "dora"
    assert "kind" not in preset_for_adapter("vram_8gb", "lora")["adapter"]


@pytest.mark.parametrize("kind", ["lokr", "loha"])
def test_lycoris_uses_linear_dim_64_alpha_128(kind):
    data = preset_for_adapter("vram_8gb", kind)
    assert data["adapter"] == {"kind": kind}
    assert data["optim"]["grad_accum"] == 8 and data["data"]["crop_frames"] == 750  # memory settings carry over
    config = resolve_config(preset="vram_8gb", overrides=[f"adapter.kind={kind}"])
    assert (config.adapter.rank, config.adapter.alpha, config.adapter.kind) == (64, 128.0, AdapterKind(kind))
    assert resolve_config(preset="recommended", overrides=[f"adapter.kind={kind}"]).adapter.target_mlp is True


def test_full_drops_adapter_fields_and_lowers_lr():
    data = preset_for_adapter("high_quality", "full")
    assert data["adapter"] == {"kind": "full"} and data["optim"]["lr"] == 1e-5
    assert "allow_full" not in data["adapter"]  # the opt-in stays with the user
    with pytest.raises(ConfigError, match="allow_full"):
        resolve_config(preset="high_quality", overrides=["adapter.kind=full"])
    config = resolve_config(preset="high_quality", overrides=["adapter.kind=full", "adapter.allow_full=true"])
    assert config.optim.lr == 1e-5 and config.adapter.rank == RunConfig().adapter.rank
    assert resolve_config(preset="high_quality", overrides=["adapter.kind=full", "adapter.allow_full=true",
                                                            "optim.lr=2e-5"]).optim.lr == 2e-5


def test_full_with_prodigy_keeps_its_lr():
    data = {"optim": {"optimizer": "prodigy", "lr": 1.0}, "adapter": {"rank": 8}}
    assert adapt_preset(data, "full") == {"optim": {"optimizer": "prodigy", "lr": 1.0}, "adapter": {"kind": "full"}}


def test_presets_written_for_another_family_lose_its_fields():
    lokr = {"adapter": {"kind": "lokr", "rank": 16, "factor": 4, "target_mlp": True}}
    assert adapt_preset(lokr, "lokr") == lokr
    assert adapt_preset(lokr, "lora") == {"adapter": {"target_mlp": True}}
    full = {"adapter": {"kind": "full", "allow_full": True, "lr_mlp": 0.5}, "optim": {"lr": 1e-5, "grad_accum": 2}}
    assert adapt_preset(full, "dora") == {"adapter": {"kind": "dora"}, "optim": {"grad_accum": 2}}


def test_kind_from_a_file_adapts_the_preset(tmp_path):
    path = tmp_path / "kind.toml"
    path.write_text('[adapter]\nkind = "lokr"\n')
    assert resolve_config(preset="quick_test", files=[path]).adapter.rank == 64
    assert resolve_config(preset="quick_test", files=[path], overrides=["adapter.rank=8"]).adapter.rank == 8


@pytest.mark.parametrize("memory, name", [
    (None, "quick_test"), (4.0, "vram_8gb"), (11.99, "vram_8gb"), (12.0, "vram_12gb"), (15.9, "vram_12gb"),
    (16.0, "vram_16gb"), (23.6, "vram_16gb"), (24.0, "vram_24gb_plus"), (79.2, "vram_24gb_plus"),
])
def test_auto_preset(memory, name):
    assert auto_preset(memory) == name


def test_detect_memory_cpu_and_bad_device():
    assert detect_device_memory_gib("cpu") is None
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        detect_device_memory_gib("gpu0")


def test_detect_memory_reads_cuda_total(monkeypatch):
    import torch

    class Props:
        total_memory = 24 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    seen = []
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: seen.append(index) or Props())
    assert detect_device_memory_gib("auto") == 24.0 and detect_device_memory_gib("cuda:1") == 24.0
    assert seen == [0, 1]
    with pytest.raises(ConfigError, match="does not exist"):
        detect_device_memory_gib("cuda:2")


def test_preset_text_is_valid_toml_with_a_description():
    for name in BUILTIN_PRESETS:
        text = (resources.files("acetune.config") / "presets" / f"{name}.toml").read_text()
        assert text.startswith("description = ")
        assert tomllib.loads(text) == load_preset_data(name)
