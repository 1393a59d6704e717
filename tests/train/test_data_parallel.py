"""Two CPU processes (gloo DDP) with batch 1 each train the same weights as one process with batch 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from acetune.config import config_to_dict
from acetune.train.loop import run
from test_training import make_config

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[2]  # the workers import acetune from this checkout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_ranks(config, config_file: Path, **env_extra: str) -> None:
    """Run `config` as two gloo ranks; both must exit 0 (a hang fails on the timeout)."""
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


def test_two_processes_match_one_process_on_the_same_global_batch(train_cache, tiny_bundle, tmp_path):
    changes = dict(optim=dict(grad_accum=2), loop=dict(epochs=2), adapter=dict(dropout=0.0))
    single = make_config(train_cache, tiny_bundle, tmp_path / "one", data=dict(repeats=2, batch_size=2), **changes)
    for _ in run(single):
        pass
    parallel = make_config(train_cache, tiny_bundle, tmp_path / "two", data=dict(repeats=2, batch_size=1), **changes)
    launch_two_ranks(parallel, tmp_path / "parallel.json")
    one = load_file(str(tmp_path / "one" / "final" / "adapter_model.safetensors"))
    two = load_file(str(tmp_path / "two" / "final" / "adapter_model.safetensors"))
    assert one.keys() == two.keys()
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in one.items() if "lora_B" in k)  # it trained
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5, rtol=1e-4), key


def test_a_non_finite_loss_on_one_rank_halts_every_rank_without_hanging(train_cache, tiny_bundle, tmp_path):
    config = make_config(train_cache, tiny_bundle, tmp_path / "run", data=dict(repeats=2, batch_size=1),
                         optim=dict(grad_accum=1), loop=dict(epochs=2, nan_patience=1))
    launch_two_ranks(config, tmp_path / "nan.json", ACETUNE_TEST_NAN_RANK="1")  # rank 1's 2nd loss is NaN
    saved = sorted((tmp_path / "run" / "checkpoints").iterdir())
    assert [folder.name for folder in saved] == ["step_0000001"]  # the last good state, then a clean halt
    assert not (tmp_path / "run" / "final").exists()
