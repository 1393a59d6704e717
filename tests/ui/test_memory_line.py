"""The Train page's memory line: when a run does not fit, it names the levers not yet pulled."""

from __future__ import annotations

from dataclasses import replace

from acetune.config import DataConfig, RunConfig
from acetune.ui import estimate


def test_a_run_that_does_not_fit_gets_the_levers_it_has_not_pulled(tiny_bundle, monkeypatch):
    monkeypatch.setattr(estimate, "detect_device_memory_gib", lambda device: 1e-6)
    config = RunConfig(data=DataConfig(checkpoint_dir=str(tiny_bundle), crop_frames=64))
    line = estimate.memory_line(config)
    assert "this checkpoint" in line and "DOES NOT FIT" in line and "loop.recompute_mlp = true" in line
    pulled = replace(config, loop=replace(config.loop, recompute_mlp=True))
    line = estimate.memory_line(pulled)
    assert "DOES NOT FIT" in line and "recompute_mlp" not in line and "loop.gradient_checkpointing" in line
