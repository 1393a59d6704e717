"""Auditions during training: files and index, strength sweeps, failures that do not stop training,
and no effect on what is trained. Also the metadata every trained adapter carries."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from acetune.config import (AdapterConfig, AdapterKind, AuditionConfig, DataConfig, LogConfig, LoopConfig, OptimConfig,
                            RunConfig, SaveConfig, ScheduleConfig, SchedulerKind)
from acetune.errors import ConfigError
from acetune.config import resolve_config
from acetune.events import Auditioned, Finished, Warned
from acetune.train.loop import run


def audition_config(cache: Path, bundle: Path, out: Path, **audition) -> RunConfig:
    return RunConfig(
        data=DataConfig(cache=str(cache), checkpoint_dir=str(bundle), crop_frames=48, batch_size=1),
        adapter=AdapterConfig(kind=AdapterKind.LORA, rank=4, alpha=8.0, dropout=0.0),
        optim=OptimConfig(lr=5e-3, grad_accum=1, weight_decay=0.0),
        schedule=ScheduleConfig(scheduler=SchedulerKind.CONSTANT),
        loop=LoopConfig(epochs=2, seed=3, eval_timesteps=(0.5,)),
        save=SaveConfig(output_dir=str(out), save_every=0, keep_last=1),
        log=LogConfig(log_every=1, heavy_every=0, tensorboard=False),
        audition=AuditionConfig(**audition),
    )


def test_auditions_render_base_sweep_and_final_with_an_index(train_cache, tiny_bundle, tmp_path):
    config = audition_config(train_cache, tiny_bundle, tmp_path / "run", every_steps=4, prompts=("calm piano",),
                             seeds=(1, 2), strengths=(0.5, 1.0), duration_s=2.0)
    events = list(run(config))
    assert isinstance(events[-1], Finished) and events[-1].reason == "complete"
    rendered = [e for e in events if isinstance(e, Auditioned)]
    # base once (2 seeds), step 4 (2 strengths x 2 seeds), final step 6 (the same)
    assert [(e.step, e.strength) for e in rendered][:2] == [(0, None), (0, None)]
    assert sorted({e.step for e in rendered}) == [0, 4, 6] and len(rendered) == 10
    folder = tmp_path / "run" / "auditions"
    index = [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]
    assert len(index) == 10 and all((folder / row["file"]).is_file() for row in index)
    row = next(r for r in index if r["step"] == 4 and r["strength"] == 0.5 and r["seed"] == 2)
    assert row["file"] == "step_0000004/p0_seed2_s0.5.wav" and row["prompt"] == "calm piano"
    assert (folder / "base" / "p0_seed1.wav").is_file()


def test_auditions_do_not_change_what_is_trained(train_cache, tiny_bundle, tmp_path):
    plain = audition_config(train_cache, tiny_bundle, tmp_path / "plain")
    heard = audition_config(train_cache, tiny_bundle, tmp_path / "heard", every_epochs=1, prompts=("x",),
                            duration_s=1.0)
    list(run(plain))
    events = list(run(heard))
    assert any(isinstance(e, Auditioned) for e in events)
    weights = "final/adapter_model.safetensors"
    with safe_open(str(tmp_path / "plain" / weights), "pt") as a, safe_open(str(tmp_path / "heard" / weights), "pt") as b:
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())


def test_a_failed_audition_warns_and_training_goes_on(train_cache, tiny_bundle, tmp_path, monkeypatch):
    import acetune.train.auditions as auditions

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(auditions, "render_latents", out_of_memory)
    config = audition_config(train_cache, tiny_bundle, tmp_path / "run", every_steps=2, prompts=("x",),
                             include_base=False, duration_s=1.0)
    events = list(run(config))
    failures = [e for e in events if isinstance(e, Warned) and e.code == "audition-failed"]
    assert len(failures) == 3 and "out of memory" in failures[0].text  # steps 2, 4, 6
    assert isinstance(events[-1], Finished) and events[-1].reason == "complete"


def test_trained_adapters_say_what_they_are(train_cache, tiny_bundle, tmp_path):
    list(run(audition_config(train_cache, tiny_bundle, tmp_path / "run")))
    with safe_open(str(tmp_path / "run" / "final" / "adapter_model.safetensors"), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["variant"] == "turbo" and metadata["recommended_shift"] == "3"
    assert metadata["recommended_steps"] == "8" and metadata["base_model"] == "acestep-v15-turbo"
    assert metadata["acetune_version"] and len(metadata["cache_fingerprint"]) == 16
    assert "trigger_word" in metadata and metadata["step"] == "6"
    assert (metadata["precision"], metadata["rope_dtype"]) == ("fp32", "model")


def test_the_rope_convention_reaches_every_rotary_stack_and_the_adapter(train_cache, tiny_bundle, tmp_path,
                                                                       monkeypatch):
    import acetune.train.loop as loop
    from acetune.config.schema import RopeDtype
    from acetune.model.layers import RotaryEmbedding

    seen = []
    build = loop.build_session

    def spy(config, **kwargs):
        session = build(config, **kwargs)
        seen.extend(m.rope_dtype for m in session.model.modules() if isinstance(m, RotaryEmbedding))
        return session

    monkeypatch.setattr(loop, "build_session", spy)
    config = audition_config(train_cache, tiny_bundle, tmp_path / "run")
    list(run(replace(config, loop=replace(config.loop, rope_dtype=RopeDtype.FP32, epochs=1))))
    assert seen and set(seen) == {RopeDtype.FP32}
    with safe_open(str(tmp_path / "run" / "final" / "adapter_model.safetensors"), "pt") as handle:
        assert handle.metadata()["rope_dtype"] == "fp32"


def test_audition_settings_are_checked():
    with pytest.raises(ConfigError, match="audition.prompts"):
        resolve_config(overrides=["audition.every_steps=10"])
    with pytest.raises(ConfigError, match="audition.strengths"):
        resolve_config(overrides=["audition.strengths=[3.0]"])
    assert replace(AuditionConfig(), format="flac").format == "flac"


def test_auditions_refuse_a_model_whose_sampler_is_unknown():
    """A custom fine-tune without is_turbo: silently rendering it with the turbo sampler would mislead."""
    from types import SimpleNamespace

    from acetune.train.auditions import prepare_auditions

    session = SimpleNamespace(config=RunConfig(audition=AuditionConfig(every_steps=10, prompts=("x",))),
                              dist=SimpleNamespace(is_main=True), plan=SimpleNamespace(variant="custom"))
    with pytest.raises(ConfigError, match="variant is unknown"):
        prepare_auditions(session)
