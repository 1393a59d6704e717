"""`loop.recompute_mlp` in a real run: the same losses, less memory, and adapters on the MLP respected.

RECOMPUTED_LOSS_RTOL: the recomputing MLP runs the same products on row chunks and sums gradients in
another order, so losses move by float rounding only (measured on the tiny bundle: relative
differences of at most ~1e-7); 1e-5 is far above that and far below a wrong gradient, which moves
the second step's loss by percent.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from acetune.config import AdapterKind, RunConfig
from acetune.events import StepDone, Warned
from acetune.model.tiny import named_config
from acetune.train.memory import estimate_memory

from test_training import events_of, make_config

RECOMPUTED_LOSS_RTOL = 1e-5


def _run(train_cache, tiny_bundle, out, recompute: bool, **adapter):
    config = make_config(train_cache, tiny_bundle, out, adapter=adapter,
                         loop=dict(epochs=1, seed=3, eval_timesteps=(0.5,), recompute_mlp=recompute))
    events = events_of(config)
    return [e.loss for e in events if isinstance(e, StepDone)], [e for e in events if isinstance(e, Warned)]


@pytest.mark.parametrize("adapter", [{}, {"kind": AdapterKind.FULL, "allow_full": True}], ids=["lora", "full"])
def test_a_recomputing_run_learns_what_the_plain_run_learns(train_cache, tiny_bundle, tmp_path, adapter):
    plain, _ = _run(train_cache, tiny_bundle, tmp_path / "plain", False, **adapter)
    recomputed, warned = _run(train_cache, tiny_bundle, tmp_path / "recomputed", True, **adapter)
    assert len(plain) == 3 and plain[0] != plain[-1]
    assert recomputed == pytest.approx(plain, rel=RECOMPUTED_LOSS_RTOL)
    assert not [w for w in warned if w.code == "recompute-mlp"]


@pytest.mark.parametrize("kind", [AdapterKind.LORA, AdapterKind.LOKR])
def test_an_adapter_on_the_mlp_keeps_the_plain_path_and_says_so(train_cache, tiny_bundle, tmp_path, kind):
    """PEFT wraps the MLP projections, LyCORIS patches their forward: either way their weights are not the MLP."""
    plain, _ = _run(train_cache, tiny_bundle, tmp_path / "plain", False, kind=kind, target_mlp=True)
    kept, warned = _run(train_cache, tiny_bundle, tmp_path / "kept", True, kind=kind, target_mlp=True)
    notes = [w.text for w in warned if w.code == "recompute-mlp"]
    assert len(notes) == 1 and "layers [0, 1]" in notes[0] and "loop.recompute_mlp" in notes[0]
    assert kept == plain


def test_the_memory_estimate_follows_the_option():
    run = RunConfig()
    estimates = [estimate_memory(dataclasses.replace(run, loop=dataclasses.replace(run.loop, recompute_mlp=on)),
                                 named_config("small"), frames=1500, dtype=torch.float32).activations
                 for on in (False, True)]
    # small config, 750 tokens, 8 layers: gate(x) and up(x) are 2 x 1536 fp32 values per token and
    # layer, x stays: at least 2 x 1536 - 512 values per token and layer fewer at the peak
    assert estimates[0] - estimates[1] >= 8 * 750 * (2 * 1536 - 512) * 4 * 0.9
