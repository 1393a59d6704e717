"""Two CPU processes (gloo) with batch 1 each train the same weights as one process with batch 2.

LoRA runs use DDP; a full fine-tune is sharded with FSDP2 (`acetune.train.sharding`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acetune.config import AdapterKind, DataConfig, config_to_dict
from acetune.events import StepDone
from acetune.model.bundle import resolve_bundle
from acetune.train.loop import run
from test_training import make_config

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[2]  # the workers import acetune from this checkout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_ranks(config, config_file: Path, **env_extra: str) -> list[str]:
    """Run `config` as two gloo ranks; both must exit 0 (a hang fails on the timeout). Returns their outputs."""
    config_file.write_text(json.dumps(config_to_dict(config)))
    port = free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **env_extra}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(config_file)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), outputs
    return outputs


def sharded(outputs: list[str]) -> bool:
    """Whether both ranks ran sharded with FSDP (they must agree)."""
    flags = {line for output in outputs for line in output.splitlines() if line.startswith("sharded=")}
    assert len(flags) == 1, outputs
    return flags.pop() == "sharded=True"


def test_two_processes_match_one_process_on_the_same_global_batch(train_cache, tiny_bundle, tmp_path):
    changes = dict(optim=dict(grad_accum=2), loop=dict(epochs=2), adapter=dict(dropout=0.0))
    single = make_config(train_cache, tiny_bundle, tmp_path / "one", data=dict(repeats=2, batch_size=2), **changes)
    for _ in run(single):
        pass
    parallel = make_config(train_cache, tiny_bundle, tmp_path / "two", data=dict(repeats=2, batch_size=1), **changes)
    assert not sharded(launch_two_ranks(parallel, tmp_path / "parallel.json"))  # adapters keep DDP
    one = load_file(str(tmp_path / "one" / "final" / "adapter_model.safetensors"))
    two = load_file(str(tmp_path / "two" / "final" / "adapter_model.safetensors"))
    assert one.keys() == two.keys()
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in one.items() if "lora_B" in k)  # it trained
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5, rtol=1e-4), key


@pytest.mark.parametrize("kind", ["lora", "full"])  # DDP, FSDP
def test_a_non_finite_loss_on_one_rank_halts_every_rank_without_hanging(train_cache, tiny_bundle, tmp_path, kind):
    config = make_config(train_cache, tiny_bundle, tmp_path / "run", data=dict(repeats=2, batch_size=1),
                         optim=dict(grad_accum=1), loop=dict(epochs=2, nan_patience=1),
                         adapter=dict(kind=AdapterKind(kind), allow_full=True))
    outputs = launch_two_ranks(config, tmp_path / "nan.json", ACETUNE_TEST_NAN_RANK="1")  # rank 1's 2nd loss is NaN
    assert sharded(outputs) == (kind == "full")
    saved = sorted((tmp_path / "run" / "checkpoints").iterdir())
    assert [folder.name for folder in saved] == ["step_0000001"]  # the last good state, then a clean halt
    assert not (tmp_path / "run" / "final").exists()


def test_a_skipped_non_finite_batch_does_not_poison_adaptive_timesteps(train_cache, tiny_bundle, tmp_path):
    config = make_config(train_cache, tiny_bundle, tmp_path / "run", data=dict(repeats=2, batch_size=1),
                         optim=dict(grad_accum=1), loop=dict(epochs=2, nan_patience=2),
                         objective=dict(adaptive_timestep_ratio=0.5))
    launch_two_ranks(config, tmp_path / "nan.json", ACETUNE_TEST_NAN_RANK="1")  # rank 1's 2nd loss is NaN
    assert (tmp_path / "run" / "final" / "adapter_model.safetensors").is_file()  # trained on to the end


# --- FSDP2: a full fine-tune sharded over the ranks ------------------------------------------------

# Clipping that bites, accumulation (no-sync micro-steps), checkpointed layers, an EMA, per-layer norms,
# and evaluations under the EMA weights that are not followed by a best save (no gather reshards them).
FULL = dict(adapter=dict(kind=AdapterKind.FULL, allow_full=True, dropout=0.0),
            optim=dict(lr=2e-3, grad_accum=2, max_grad_norm=0.05),
            loop=dict(epochs=3, ema_decay=0.9, gradient_checkpointing=1.0, best_after=1000), log=dict(heavy_every=2))


def full_config(train_cache, tiny_bundle, out: Path, batch_size: int, **extra):
    changes = {section: {**values, **extra.get(section, {})} for section, values in FULL.items()}
    changes.update({k: v for k, v in extra.items() if k not in FULL})
    return make_config(train_cache, tiny_bundle, out, data=dict(repeats=2, batch_size=batch_size), **changes)


def latest_checkpoint(run_dir: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    folder = sorted((run_dir / "checkpoints").iterdir())[-1]
    state = json.loads((folder / "state.json").read_text())
    return state, load_file(str(folder / "state.safetensors")), load_file(str(folder / "decoder.safetensors"))


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefixes=("",)) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        if key.startswith(prefixes):
            assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), (key, (a[key] - b[key]).abs().max())


@pytest.fixture(scope="module")
def fsdp_runs(train_cache, tiny_bundle, tmp_path_factory) -> Path:
    """One process with batch 2 (`one/`) and two FSDP ranks with batch 1 each (`two/`), same config otherwise."""
    root = tmp_path_factory.mktemp("fsdp")
    events = list(run(full_config(train_cache, tiny_bundle, root / "one", batch_size=2)))
    assert max(e.grad_norm for e in events if isinstance(e, StepDone)) > FULL["optim"]["max_grad_norm"]
    assert sharded(launch_two_ranks(full_config(train_cache, tiny_bundle, root / "two", batch_size=1),
                                    root / "two.json"))
    return root


def test_fsdp_full_fine_tune_matches_one_process_on_the_same_global_batch(fsdp_runs, tiny_bundle):
    one = load_file(str(fsdp_runs / "one" / "final" / "decoder.safetensors"))
    two = load_file(str(fsdp_runs / "two" / "final" / "decoder.safetensors"))
    base = load_file(str(resolve_bundle(str(tiny_bundle), DataConfig().model).dit / "model.safetensors"))
    assert all(not torch.allclose(one[k], base[k]) for k in one if k.endswith("_proj.weight"))  # it trained
    assert_close(one, two)  # the EMA weights (final/ is saved with the EMA applied)


def test_an_fsdp_checkpoint_has_the_single_process_format_and_values(fsdp_runs):
    state_one, tensors_one, weights_one = latest_checkpoint(fsdp_runs / "one")
    state_two, tensors_two, weights_two = latest_checkpoint(fsdp_runs / "two")
    assert state_one["step"] == state_two["step"] > 0
    assert state_one["tensors"] == state_two["tensors"]  # the same tree: names, groups, hyper-parameters
    assert any(key.startswith("optimizer.state.") for key in tensors_two)
    assert_close(tensors_one, tensors_two, prefixes=("adapter.", "optimizer.", "ema."))  # raw weights, AdamW, EMA
    assert_close(weights_one, weights_two)


def test_a_stopped_and_resumed_fsdp_run_equals_the_uninterrupted_one(fsdp_runs, train_cache, tiny_bundle, tmp_path):
    config = full_config(train_cache, tiny_bundle, tmp_path / "b", batch_size=1)
    assert sharded(launch_two_ranks(config, tmp_path / "stop.json", ACETUNE_TEST_STOP_AFTER="3"))
    assert [folder.name for folder in (tmp_path / "b" / "checkpoints").iterdir()] == ["step_0000003"]  # mid-epoch
    assert not (tmp_path / "b" / "final").exists()
    resumed = replace(config, save=replace(config.save, resume_from="latest"))
    assert sharded(launch_two_ranks(resumed, tmp_path / "resume.json"))
    straight = load_file(str(fsdp_runs / "two" / "final" / "decoder.safetensors"))
    again = load_file(str(tmp_path / "b" / "final" / "decoder.safetensors"))
    assert straight.keys() == again.keys() and all(torch.equal(straight[k], again[k]) for k in straight)
    _, state_straight, _ = latest_checkpoint(fsdp_runs / "two")
    _, state_again, _ = latest_checkpoint(tmp_path / "b")
    for key in state_straight:
        if key.startswith(("adapter.", "optimizer.", "ema.")):
            assert torch.equal(state_straight[key], state_again[key]), key


def test_a_ddp_checkpoint_of_a_full_fine_tune_resumes_under_fsdp(fsdp_runs, train_cache, tiny_bundle, tmp_path):
    """loop.fsdp may change on resume: both write the same checkpoint format."""
    config = full_config(train_cache, tiny_bundle, tmp_path / "c", batch_size=1, loop=dict(fsdp=False))
    assert not sharded(launch_two_ranks(config, tmp_path / "ddp.json", ACETUNE_TEST_STOP_AFTER="3"))
    resumed = replace(config, loop=replace(config.loop, fsdp=True), save=replace(config.save, resume_from="latest"))
    assert sharded(launch_two_ranks(resumed, tmp_path / "fsdp.json"))
    assert_close(load_file(str(fsdp_runs / "two" / "final" / "decoder.safetensors")),
                 load_file(str(tmp_path / "c" / "final" / "decoder.safetensors")))


def test_an_fsdp_group_dropped_for_a_non_finite_loss_leaves_no_gradient_behind(train_cache, tiny_bundle, tmp_path,
                                                                                 monkeypatch):
    """Rank 1's first loss is NaN: both ranks drop that micro-batch and the unreduced gradients FSDP holds."""
    import acetune.train.objective as objective

    changes = dict(loop=dict(nan_patience=2, ema_decay=0.0))
    assert sharded(launch_two_ranks(full_config(train_cache, tiny_bundle, tmp_path / "two", batch_size=1, **changes),
                                    tmp_path / "nan.json", ACETUNE_TEST_NAN_RANK="1", ACETUNE_TEST_NAN_CALL="1"))
    original, calls = objective.velocity_loss, {"n": 0}

    def velocity_loss(*args, **kwargs):  # one process drops the same (first) global micro-batch
        out = original(*args, **kwargs)
        calls["n"] += 1
        return type(out)(**{**vars(out), "loss": out.loss * float("nan")}) if calls["n"] == 1 else out

    monkeypatch.setattr(objective, "velocity_loss", velocity_loss)
    events = list(run(full_config(train_cache, tiny_bundle, tmp_path / "one", batch_size=2, **changes)))
    assert any(getattr(e, "code", "") == "non-finite-loss" for e in events) and events[-1].reason == "complete"
    one = load_file(str(tmp_path / "one" / "final" / "decoder.safetensors"))
    two = load_file(str(tmp_path / "two" / "final" / "decoder.safetensors"))
    assert_close(one, two)
