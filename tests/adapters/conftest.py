"""Shared pieces for the adapter tests: a fresh tiny decoder, fixed inputs, one training step."""

from __future__ import annotations

import pytest
import torch

from acetune.adapters import AttachedAdapter
from acetune.config import AdapterConfig, AdapterKind
from acetune.model import build_tiny_model


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run fastest on one intra-op thread, which also does not stall on a busy CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def new_decoder():
    """seed -> the tiny DiT decoder (2 layers, width 64), fp32, in eval mode (no dropout anywhere)."""

    def build(seed: int = 0) -> torch.nn.Module:
        return build_tiny_model("tiny", seed).decoder.eval()

    return build


@pytest.fixture(scope="session")
def config_for():
    """kind, **changes -> rank 4, alpha 8, no dropout (deterministic in train mode too)."""

    def make(kind: AdapterKind, **changes) -> AdapterConfig:
        values = {"kind": kind, "rank": 4, "alpha": 8.0, "dropout": 0.0, "allow_full": kind is AdapterKind.FULL}
        return AdapterConfig(**{**values, **changes})

    return make


@pytest.fixture(scope="session")
def inputs() -> tuple[torch.Tensor, ...]:
    """x_t [2, 24, 64], t [2], r [2], encoder states [2, 7, 64], context latents [2, 24, 128]."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 24, 64, generator=g)
    enc = torch.randn(2, 7, 64, generator=g)
    ctx = torch.randn(2, 24, 128, generator=g)
    return x, torch.tensor([0.3, 0.8]), torch.tensor([0.1, 0.5]), enc, ctx


@pytest.fixture(scope="session")
def forward(inputs):
    """decoder -> its output on the fixed inputs, without autograd."""

    def run(decoder: torch.nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return decoder(*inputs)

    return run


@pytest.fixture(scope="session")
def train_step(inputs):
    """One AdamW step on an MSE to a random target, through `attached.param_groups`."""

    def step(attached: AttachedAdapter, lr: float = 1e-2) -> None:
        g = torch.Generator().manual_seed(1)
        target = torch.randn(inputs[0].shape, generator=g)
        optimizer = torch.optim.AdamW(attached.param_groups(lr, 0.01))
        attached.decoder.train()
        loss = torch.nn.functional.mse_loss(attached.decoder(*inputs), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        attached.decoder.eval()

    return step
