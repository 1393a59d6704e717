"""Shared fixtures: the golden reference tensors and tiny checkpoint folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from acetune.model import AceStepModel, ModelConfig, write_tiny_checkpoint

GOLDEN_DIR = Path(__file__).parent / "fixtures" / "golden"
MODEL_GOLDEN = GOLDEN_DIR / "model_tiny_seed0.safetensors"
SAMPLER_GOLDEN = GOLDEN_DIR / "sampler_tiny_seed0.safetensors"


@pytest.fixture(scope="session")
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(MODEL_GOLDEN))


@pytest.fixture(scope="session")
def sampler_golden() -> dict[str, torch.Tensor]:
    return load_file(str(SAMPLER_GOLDEN))


@pytest.fixture(scope="session")
def golden_config() -> ModelConfig:
    with safe_open(str(SAMPLER_GOLDEN), "pt") as handle:
        return ModelConfig.from_dict(json.loads(handle.metadata()["config_json"]))


@pytest.fixture()
def golden_model(golden, golden_config) -> AceStepModel:
    """The official tiny model with the golden weights, strictly loaded, in eval mode."""
    model = AceStepModel(golden_config)
    model.load_state_dict({k[2:]: v for k, v in golden.items() if k.startswith("w.")}, strict=True)
    return model.eval()


@pytest.fixture()
def golden_inputs(golden) -> dict[str, torch.Tensor]:
    return {k[3:]: v for k, v in golden.items() if k.startswith("in.")}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny official-layout checkpoint folder; tests must not modify it."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "acestep-tiny")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A complete tiny checkpoints/ folder: DiT (8 latent channels), VAE, text encoder + tokenizer."""
    from acetune.model.tiny_bundle import write_tiny_bundle

    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "checkpoints")


@pytest.fixture()
def disk_full_at(monkeypatch):
    """matches -> from now on, renaming a finished temp file onto a path `matches(path)` accepts fails with ENOSPC,
    as when a full disk is found at the last step of an atomic write."""
    import errno
    import os

    real_replace = os.replace

    def install(matches) -> None:
        def replace(source, destination):
            if matches(Path(destination)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_replace(source, destination)

        monkeypatch.setattr(os, "replace", replace)

    return install
