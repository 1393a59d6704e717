"""A kill -9 while merging or exporting leaves the previous model or file intact; running the command again
replaces it. Kills are injected at named points by tests/crash_runner.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acetune.cli.app import main
from acetune.config import AdapterConfig
from acetune.model import load_model
from crash_runner import run_killed
from saved_adapters import saved_adapter

@pytest.fixture(scope="module")
def adapter(tiny_bundle, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fault-adapter") / "final"
    decoder = load_model(tiny_bundle / "acestep-v15-turbo").model.decoder
    saved_adapter(decoder, AdapterConfig(rank=4, alpha=8.0, dropout=0.0), folder)
    return folder


def test_a_killed_merge_leaves_the_previous_model(adapter, tiny_bundle, tmp_path):
    out = tmp_path / "merged"
    args = ["merge", "--checkpoint-dir", str(tiny_bundle), "--adapter", str(adapter), "--out", str(out)]
    assert main(args) == 0
    before = load_file(str(out / "model.safetensors"))
    half = ["merge", "--checkpoint-dir", str(tiny_bundle), "--adapter", f"{adapter}@0.5", "--out", str(out),
            "--overwrite"]
    run_killed(("acetune.model.checkpoint:write_weights", "1"), half)
    after = load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert main([*args, "--overwrite"]) == 0


def test_a_killed_export_leaves_the_previous_file(adapter, tmp_path):
    out = tmp_path / "mine_comfyui.safetensors"
    args = ["export-comfyui", str(adapter), "--out", str(out)]
    assert main(args) == 0
    before = out.read_bytes()
    run_killed(("acetune.adapters.single_file:write_safetensors", "1"), [*args, "--overwrite"])
    assert out.read_bytes() == before
    assert main([*args, "--overwrite"]) == 0 and load_file(str(out))
