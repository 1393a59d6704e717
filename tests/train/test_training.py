"""End-to-end training on the tiny bundle: learning, exact resume, what changes, and bad inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acetune.config import AdapterConfig, AdapterKind, DataConfig, LogConfig, LoopConfig, OptimConfig, RunConfig
from acetune.config import SaveConfig, ScheduleConfig, SchedulerKind
from acetune.errors import CacheMismatchError, CheckpointWriteError, ConfigError, ResumeError, TrainingError
from acetune.events import EvalDone, Finished, LayerGradNorms, Saved, StepDone, TrainStarted
from acetune.train.loop import Control, run


def make_config(cache: Path, bundle: Path, out: Path, **changes) -> RunConfig:
    config = RunConfig(
        data=DataConfig(cache=str(cache), checkpoint_dir=str(bundle), crop_frames=48, batch_size=1),
        adapter=AdapterConfig(kind=AdapterKind.LORA, rank=8, alpha=16.0, dropout=0.0),
        optim=OptimConfig(lr=5e-3, grad_accum=1, weight_decay=0.0),
        schedule=ScheduleConfig(scheduler=SchedulerKind.CONSTANT),
        loop=LoopConfig(epochs=4, seed=3, eval_timesteps=(0.3, 0.6, 0.9)),
        save=SaveConfig(output_dir=str(out), save_every=0, keep_last=2),
        log=LogConfig(log_every=1, heavy_every=0, tensorboard=False),
    )
    for section, values in changes.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


def events_of(config: RunConfig, control: Control | None = None) -> list:
    return list(run(config, control))


def test_a_short_lora_run_saves_inference_ready_folders(train_cache, tiny_bundle, tmp_path):
    events = events_of(make_config(train_cache, tiny_bundle, tmp_path / "run", log=dict(heavy_every=4)))
    norms = [e for e in events if isinstance(e, LayerGradNorms)]
    assert [e.step for e in norms] == [4, 8, 12] and set(norms[0].norms) == {"layers.0", "layers.1"}
    started = events[0] if isinstance(events[0], TrainStarted) else next(e for e in events if isinstance(e, TrainStarted))
    assert started.plan["total_steps"] == 12 and started.plan["trainable_parameters"] > 0
    steps = [e for e in events if isinstance(e, StepDone)]
    assert [e.step for e in steps] == list(range(1, 13))
    assert [e.step for e in events if isinstance(e, EvalDone)] == [0, 3, 6, 9, 12]  # baseline + each epoch
    assert isinstance(events[-1], Finished) and events[-1].reason == "complete"
    final = tmp_path / "run" / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    kinds = {e.kind for e in events if isinstance(e, Saved)}
    assert {"best", "final", "checkpoint"} <= kinds
    latest = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    assert json.loads((latest / "state.json").read_text())["step"] == 12


@pytest.mark.parametrize("kind, lr", [("lora", 1e-2), ("lokr", 1e-2), ("full", 2e-3)])
def test_memorisation_lowers_the_eval_loss_by_a_third(train_cache, tiny_bundle, tmp_path, kind, lr):
    config = make_config(train_cache, tiny_bundle, tmp_path / kind,
                         adapter=dict(kind=AdapterKind(kind), rank=16, alpha=16.0, target_mlp=True,
                                      allow_full=kind == "full"),
                         optim=dict(lr=lr), loop=dict(epochs=15), data=dict(crop_frames=0))
    evals = [e.loss for e in events_of(config) if isinstance(e, EvalDone)]
    assert evals[-1] <= 0.7 * evals[0], evals


def run_until(config: RunConfig, stop_after: int) -> list:
    control = Control()
    events = []
    for event in run(config, control):
        events.append(event)
        if isinstance(event, StepDone) and event.step == stop_after:
            control.stop = True
    return events


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(train_cache, tiny_bundle, tmp_path):
    changes = dict(data=dict(batch_size=2, repeats=2), optim=dict(grad_accum=2),
                   adapter=dict(dropout=0.1), loop=dict(epochs=4, ema_decay=0.9),
                   schedule=dict(scheduler=SchedulerKind.COSINE, warmup_steps=2),
                   objective=dict(adaptive_timestep_ratio=0.5))
    straight = events_of(make_config(train_cache, tiny_bundle, tmp_path / "a", **changes))
    first = run_until(make_config(train_cache, tiny_bundle, tmp_path / "b", **changes), stop_after=3)
    assert isinstance(first[-1], Finished) and first[-1].reason == "stopped"
    resumed = events_of(make_config(train_cache, tiny_bundle, tmp_path / "b",
                                    save=dict(resume_from="latest"), **changes))
    losses = lambda events: [(e.step, e.loss) for e in events if isinstance(e, StepDone)]  # noqa: E731
    assert losses(straight) == losses(first) + losses(resumed)
    evals = lambda events: [(e.step, e.loss) for e in events if isinstance(e, EvalDone) and e.step]  # noqa: E731
    assert evals(straight) == evals(first) + evals(resumed)
    a, b = adapter_tensors(tmp_path / "a" / "final"), adapter_tensors(tmp_path / "b" / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_only_the_adapter_is_saved_and_trained(train_cache, tiny_bundle, tmp_path):
    events_of(make_config(train_cache, tiny_bundle, tmp_path / "run", adapter=dict(attention="self")))
    keys = adapter_tensors(tmp_path / "run" / "final").keys()
    assert keys and all(".self_attn." in k and (".lora_A." in k or ".lora_B." in k) for k in keys)
    assert len(keys) == 2 * 4 * 2  # 2 layers x 4 projections x (A, B)


def test_non_finite_loss_halts_with_a_checkpoint(train_cache, tiny_bundle, tmp_path, monkeypatch):
    from acetune.train.trainer import Trainer

    monkeypatch.setattr(Trainer, "_micro_step", lambda *args, **kwargs: float("nan"))
    events = events_of(make_config(train_cache, tiny_bundle, tmp_path / "run"))
    assert events[-1].reason == "halted"
    assert any(isinstance(e, Saved) and e.kind == "checkpoint" for e in events)


def test_bad_inputs_fail_before_training(train_cache, tiny_bundle, tmp_path):
    from acetune.model.tiny_bundle import write_tiny_bundle

    with pytest.raises(ConfigError, match="longer than every song"):
        events_of(make_config(train_cache, tiny_bundle, tmp_path / "r1", data=dict(crop_frames=5000)))
    with pytest.raises(ConfigError, match="bitsandbytes"):
        from acetune.config import OptimizerKind

        events_of(make_config(train_cache, tiny_bundle, tmp_path / "r2", optim=dict(optimizer=OptimizerKind.ADAMW8BIT)))
    other = write_tiny_bundle(tmp_path / "other", seed=1)
    with pytest.raises(CacheMismatchError, match="model: cache"):
        events_of(make_config(train_cache, other, tmp_path / "r3"))
    done = tmp_path / "r4"
    events_of(make_config(train_cache, tiny_bundle, done, loop=dict(epochs=1)))
    with pytest.raises(CheckpointWriteError, match="holds a run with checkpoints up to step 3"):
        events_of(make_config(train_cache, tiny_bundle, done, loop=dict(epochs=1)))
    with pytest.raises(ResumeError, match="adapter.rank: 8 -> 4"):
        events_of(make_config(train_cache, tiny_bundle, done, adapter=dict(rank=4), save=dict(resume_from="latest")))
    with pytest.raises(ResumeError, match="trains a lora adapter"):
        events_of(make_config(train_cache, tiny_bundle, done, adapter=dict(kind=AdapterKind.LOKR),
                              save=dict(resume_from="latest")))


def test_empty_cache_is_refused(train_cache, tiny_bundle, tmp_path):
    import shutil

    from acetune.data.cache import CacheWriter

    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(train_cache / "fingerprint.json", empty / "fingerprint.json")
    CacheWriter(empty, []).close()
    with pytest.raises(TrainingError, match="holds no samples"):
        events_of(make_config(empty, tiny_bundle, tmp_path / "run"))
