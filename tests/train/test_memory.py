"""The memory estimate follows the implementation: counts, activations, checkpointing, CLI."""

from __future__ import annotations

import torch

from acetune.cli.app import main
from acetune.config import AdapterConfig, DataConfig, LoopConfig, RunConfig
from acetune.model import named_config
from acetune.train.memory import estimate_memory


def estimate(**loop):
    run = RunConfig(data=DataConfig(crop_frames=256), adapter=AdapterConfig(rank=8, alpha=16.0),
                    loop=LoopConfig(**loop))
    return estimate_memory(run, named_config("small"), dtype=torch.float32)


def test_counts_and_shapes():
    plain = estimate()
    assert plain.trainable_parameters == 8 * (512 + 512 + 512 + 256 + 512 + 256 + 512 + 512) * 2 * 8
    assert plain.gradients == plain.trainable_parameters * 4
    assert plain.optimizer == plain.trainable_parameters * 8
    run = RunConfig(data=DataConfig(crop_frames=512), adapter=AdapterConfig(rank=8, alpha=16.0))
    longer = estimate_memory(run, named_config("small"), dtype=torch.float32)
    assert 1.7 < longer.activations / plain.activations < 2.6  # roughly linear in length at this size


def test_checkpointing_cuts_activations():
    assert estimate(gradient_checkpointing=1.0).activations < 0.5 * estimate().activations


def test_cli_reports_fit(capsys):
    assert main(["estimate-memory", "--architecture", "small", "--set", "data.crop_frames=256",
                 "--memory-gib", "0.01"]) == 0
    assert "does not fit" in capsys.readouterr().out
