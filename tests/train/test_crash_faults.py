"""The standing fault suite for training: a kill -9 at every distinct phase of a run, then a resume, must end
exactly as an uninterrupted run (final/, best/, the eval history), with every checkpoint left on disk loadable.

Kills are injected at named points by tests/crash_runner.py (os._exit in a subprocess: no cleanup
runs, as with a real SIGKILL), never by timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acetune.cli.app import main
from acetune.train.checkpoint import list_checkpoints, read_checkpoint
from crash_runner import run_killed

KILL_POINTS = {  # phase: crash_runner arguments (target, count[, text][, halfway])
    "before the first step": ("acetune.train.trainer:Trainer._micro_step", "1"),
    "mid-run, between steps": ("acetune.train.trainer:Trainer._micro_step", "5"),
    "mid accumulation": ("acetune.train.trainer:Trainer._optimizer_step", "4"),
    "writing a checkpoint's state tensors": ("acetune.train.checkpoint:save_file", "2"),
    "writing a checkpoint's state.json": ("acetune.train.checkpoint:write_json_atomic", "2"),
    "right after the first checkpoint": ("acetune.train.saving:prune_checkpoints", "1"),
    "halfway through pruning": ("shutil:rmtree", "1", "/step_", "halfway"),
    "during an audition": ("acetune.train.auditions:Auditioner.render", "2"),
    "saving best/": ("acetune.train.saving:save_inference", "2", "best"),
    "during the final save": ("acetune.train.saving:save_inference", "1", "final"),
}


def _args(cache: Path, bundle: Path, out: Path) -> list[str]:
    return ["train", "--cache", str(cache), "--checkpoint-dir", str(bundle), "--out", str(out),
            "--crop-seconds", "1.92", "--epochs", "4", "--grad-accum", "1", "--rank", "4", "--seed", "5",
            "--save-every", "3", "--set", "save.keep_last=1", "--set", "log.tensorboard=false",
            "--set", "audition.every_epochs=2", "--set", 'audition.prompts=["crash test"]',
            "--set", "audition.duration_s=1.0"]


def _evals(run: Path) -> dict[int, tuple[float, bool]]:
    """The eval history from events.jsonl; a step evaluated again after a resume keeps its last record."""
    lines = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]
    return {e["step"]: (e["loss"], e["best"]) for e in lines if e["event"] == "EvalDone" and e["step"]}


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(train_cache, tiny_bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    assert main(_args(train_cache, tiny_bundle, out)) == 0
    return out


@pytest.mark.parametrize("phase", list(KILL_POINTS))
def test_a_kill_at_any_phase_resumes_to_the_uninterrupted_run(phase, uninterrupted, train_cache, tiny_bundle,
                                                              tmp_path):
    out = tmp_path / "run"
    args = _args(train_cache, tiny_bundle, out)
    run_killed(KILL_POINTS[phase], args)
    for _, folder in list_checkpoints(out):
        read_checkpoint(folder)  # whatever the kill left that looks like a checkpoint loads
    assert main([*args, "--resume-from", "latest"]) == 0
    for folder in ("final", "best"):
        a, b = _tensors(uninterrupted / folder), _tensors(out / folder)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), folder
    assert _evals(out) == _evals(uninterrupted)
